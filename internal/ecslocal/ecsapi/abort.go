package ecsapi

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// abortReason is the statusReason of a service deployment stopped by StopServiceDeployment
// with stopType ABORT, and the rolloutStateReason of its deployment (ecslocal's wording).
const abortReason = "Stopped by StopServiceDeployment (ABORT)."

// requestedStop carries out a StopServiceDeployment with stopType ABORT: the deployment stops
// where it is. The service deployment is STOPPED, the PRIMARY deployment FAILED, and the
// scheduler starts no more tasks (as after a circuit breaker without rollback); the tasks of
// every revision that run go on, and nothing is rolled back. ECS documents only ROLLBACK as a
// valid stopType (StopServiceDeployment in the API reference), so this is ecslocal's reading
// of ABORT and its STOP_REQUESTED → STOPPED statuses. The caller holds a.mu.
func (a *API) requestedStop(s *service, cur *deployment) {
	now := a.timestamp()
	cur.d.Status, cur.d.StatusReason, cur.d.StoppedAt, cur.d.UpdatedAt = types.ServiceDeploymentStatusStopped, aws.String(abortReason), now, now
	if len(s.s.Deployments) == 0 {
		return
	}
	p := &s.s.Deployments[0]
	p.RolloutState, p.RolloutStateReason, p.UpdatedAt = types.DeploymentRolloutStateFailed, aws.String(abortReason), now
	a.addEvent(s, fmt.Sprintf("(service %s) (deployment %s) deployment stopped.", *s.s.ServiceName, *p.Id))
}
