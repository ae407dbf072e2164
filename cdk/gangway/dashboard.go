package gangway

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"
)

// dashboard creates the service's CloudWatch dashboard: what an on-call engineer looks at
// first during a deployment. Rows: 5xx (per target group and the load balancer's own) and
// healthy/unhealthy hosts; response time p50/p99 and requests per target group; the
// deployment alarms' states, the service's CPU and memory, and its tasks and deployments.
// Both target groups are drawn: which one serves changes with every deployment.
func (s *GangwayService) dashboard(r resolved) {
	type group struct {
		name string
		tg   elbv2.ApplicationTargetGroup
	}
	groups := []group{{"Blue", s.Blue}}
	if s.Green != nil {
		groups = append(groups, group{"Green", s.Green})
	}
	label := func(m awscloudwatch.Metric, l string) awscloudwatch.IMetric {
		return m.With(&awscloudwatch.MetricOptions{Label: jsii.String(l)})
	}
	perGroup := func(metric, statistic, suffix string) []awscloudwatch.IMetric {
		var ms []awscloudwatch.IMetric
		for _, g := range groups {
			ms = append(ms, label(s.albMetric(metric, statistic, g.tg), g.name+" "+suffix))
		}
		return ms
	}
	graph := func(title string, left []awscloudwatch.IMetric, annotations ...*awscloudwatch.HorizontalAnnotation) awscloudwatch.IWidget {
		props := &awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6),
		}
		if len(annotations) > 0 {
			props.LeftAnnotations = &annotations
		}
		return awscloudwatch.NewGraphWidget(props)
	}
	threshold := func(v float64, l string) *awscloudwatch.HorizontalAnnotation {
		return &awscloudwatch.HorizontalAnnotation{Value: jsii.Number(v), Label: jsii.String(l)}
	}

	fiveXX := append(perGroup("HTTPCode_Target_5XX_Count", "Sum", "target 5xx"),
		label(s.albMetric("HTTPCode_ELB_5XX_Count", "Sum", nil), "load balancer 5xx"))
	hosts := append(perGroup("HealthyHostCount", "Minimum", "healthy"), perGroup("UnHealthyHostCount", "Maximum", "unhealthy")...)
	latency := append(perGroup("TargetResponseTime", "p50", "p50"), perGroup("TargetResponseTime", "p99", "p99")...)
	requests := perGroup("RequestCount", "Sum", "requests")

	alarms := make([]interfacesawscloudwatch.IAlarmRef, 0, len(s.Alarms))
	for _, a := range s.Alarms {
		alarms = append(alarms, a)
	}
	ecsMetric := func(namespace, name, statistic, l string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:  jsii.String(namespace),
			MetricName: jsii.String(name),
			DimensionsMap: &map[string]*string{
				"ClusterName": s.Cluster.ClusterName(),
				"ServiceName": s.Service.ServiceName(),
			},
			Statistic: jsii.String(statistic),
			Period:    awscdk.Duration_Minutes(jsii.Number(1)),
			Label:     jsii.String(l),
		})
	}
	usage := []awscloudwatch.IMetric{
		ecsMetric("AWS/ECS", "CPUUtilization", "Average", "CPU %"),
		ecsMetric("AWS/ECS", "MemoryUtilization", "Average", "memory %"),
	}
	// Container Insights (on for the cluster the construct creates) publishes the task and
	// deployment counts; a given cluster without it leaves this graph empty.
	tasks := []awscloudwatch.IMetric{
		ecsMetric("ECS/ContainerInsights", "DesiredTaskCount", "Maximum", "desired tasks"),
		ecsMetric("ECS/ContainerInsights", "RunningTaskCount", "Maximum", "running tasks"),
		ecsMetric("ECS/ContainerInsights", "PendingTaskCount", "Maximum", "pending tasks"),
		ecsMetric("ECS/ContainerInsights", "DeploymentCount", "Maximum", "deployments"),
	}

	s.Dashboard = awscloudwatch.NewDashboard(s.Construct, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		// A literal, as the alarms' names are, so that a runbook can name it before deploy.
		DashboardName:   jsii.String(*awscdk.Names_UniqueId(s.Construct)),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets: &[]*[]awscloudwatch.IWidget{
			{
				graph("5xx responses", fiveXX,
					threshold(float64(r.Target5xxThreshold), "target 5xx alarm"), threshold(float64(r.ELB5xxThreshold), "load balancer 5xx alarm")),
				graph("Healthy and unhealthy hosts", hosts, threshold(float64(r.UnhealthyHostThreshold), "unhealthy hosts alarm")),
				awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
					Title: jsii.String("Deployment alarms (ROLLBACK_ON_ALARM)"), Alarms: &alarms, Width: jsii.Number(8), Height: jsii.Number(6),
				}),
			},
			{
				graph("Target response time (seconds)", latency, threshold(r.TargetP99Latency.Seconds(), "p99 alarm")),
				graph("Requests", requests),
			},
			{
				graph("Service CPU and memory", usage),
				graph("Tasks and deployments", tasks),
			},
		},
	})
}
