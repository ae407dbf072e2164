package ecsapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// This file watches the CloudWatch alarms a deployment names, as "How CloudWatch alarms
// detect Amazon ECS deployment failures" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html)
// describes: while a deployment is in progress (its bake time included), an alarm in ALARM
// fails it; with rollback set the service goes back to the revision it replaced, otherwise the
// deployment ends STOPPED. Both strategies are watched.

// AlarmReader reports a CloudWatch alarm's state by name: "OK", "ALARM" or
// "INSUFFICIENT_DATA"; ok is false when no such alarm exists.
//
// The scheduler calls it with its lock held: it must return at once and not call the API.
type AlarmReader interface {
	AlarmState(name string) (state string, ok bool)
}

// checkAlarms fails the deployment in progress when one of its alarms is in ALARM, and
// reports whether it did. The caller holds a.mu.
func (a *API) checkAlarms(ctx context.Context, s *service, cur *deployment) bool {
	al := cur.d.Alarms
	if a.alarms == nil || al == nil || al.Status != types.ServiceDeploymentRollbackMonitorsStatusMonitoring || cur.d.Status != types.ServiceDeploymentStatusInProgress {
		return false
	}
	var fired []string
	for _, name := range al.AlarmNames {
		if state, ok := a.alarms.AlarmState(name); ok && state == "ALARM" {
			fired = append(fired, name)
		}
	}
	if len(fired) == 0 {
		return false
	}
	al.Status, al.TriggeredAlarmNames = types.ServiceDeploymentRollbackMonitorsStatusTriggered, fired
	reason := fmt.Sprintf("One or more deployment alarms (%s) are in ALARM state.", strings.Join(fired, ", "))
	a.rollBackOrStop(ctx, s, cur, reason, cur.d.DeploymentConfiguration.Alarms.Rollback)
	return true
}
