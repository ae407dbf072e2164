package cfn

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// Logs creates log groups (a *logs.Service).
type Logs interface {
	CreateLogGroup(context.Context, *cwl.CreateLogGroupInput) (*cwl.CreateLogGroupOutput, error)
	PutRetentionPolicy(context.Context, *cwl.PutRetentionPolicyInput) (*cwl.PutRetentionPolicyOutput, error)
}

// logGroup creates an AWS::Logs::LogGroup: its name (generated when the template has none)
// and retention; its class, KMS key, data protection and tags are not modelled. Ref is the
// name, Arn the group's ARN with ":*", as CloudFormation returns them.
func (d *deployer) logGroup(ctx context.Context, res *Resource, props map[string]any) error {
	var in struct {
		LogGroupName    string
		RetentionInDays int32
	}
	if err := decode(props, &in); err != nil {
		return err
	}
	if in.LogGroupName == "" {
		in.LogGroupName = d.generatedName(res.LogicalResourceId, 512)
	}
	logs := d.s.o.Logs
	if _, err := logs.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String(in.LogGroupName)}); err != nil {
		return fmt.Errorf("log group %s: %w", in.LogGroupName, err)
	}
	if in.RetentionInDays != 0 {
		if _, err := logs.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String(in.LogGroupName), RetentionInDays: aws.Int32(in.RetentionInDays)}); err != nil {
			return fmt.Errorf("log group %s: %w", in.LogGroupName, err)
		}
	}
	res.PhysicalResourceId = in.LogGroupName
	res.attrs["Arn"] = fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", d.s.o.Region, d.s.o.Account, in.LogGroupName)
	return nil
}
