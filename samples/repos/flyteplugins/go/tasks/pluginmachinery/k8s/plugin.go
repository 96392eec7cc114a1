// Package k8s helps plugins whose tasks run as Kubernetes objects.
package k8s

import (
	"context"

	v1 "k8s.io/api/core/v1"

	"github.com/flyteorg/flyteplugins/go/tasks/pluginmachinery/core"
)

// ResourceBuilder turns a task into a Kubernetes object and reads the object's status back.
type ResourceBuilder interface {
	// BuildResource returns the object to create for this attempt.
	BuildResource(ctx context.Context, tctx core.TaskContext) (*v1.Pod, error)
	// GetTaskPhase maps the observed object to a task phase.
	GetTaskPhase(ctx context.Context, tctx core.TaskContext, pod *v1.Pod) (core.PhaseInfo, error)
}

// ObjectName names the object of one attempt; Kubernetes names are at most 63 characters.
func ObjectName(executionID string) string {
	const maxLen = 63
	if len(executionID) <= maxLen {
		return executionID
	}
	return executionID[:maxLen]
}
