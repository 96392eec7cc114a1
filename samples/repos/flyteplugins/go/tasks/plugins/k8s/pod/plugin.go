// Package pod runs a task as a single Kubernetes pod.
package pod

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flyteorg/flyteplugins/go/tasks/pluginmachinery/core"
	"github.com/flyteorg/flyteplugins/go/tasks/pluginmachinery/k8s"
)

const (
	// ContainerTaskType is a task that is just an image and a command.
	ContainerTaskType = "container"
	// PythonTaskType is a flytekit @task.
	PythonTaskType = "python-task"
	primaryContainer = "primary"
)

// Plugin builds pods for container and Python tasks.
type Plugin struct{}

// BuildResource renders the pod for one attempt of the task.
func (Plugin) BuildResource(_ context.Context, tctx core.TaskContext) (*v1.Pod, error) {
	tmpl := tctx.Template()
	if tmpl.Image == "" {
		return nil, fmt.Errorf("task %s has no container image", tmpl.ID)
	}
	requests, err := toResourceList(tmpl.Resources)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", tmpl.ID, err)
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   k8s.ObjectName(tctx.ExecutionID()),
			Labels: map[string]string{"flyte.org/task": tmpl.ID},
		},
		Spec: v1.PodSpec{
			// The engine owns retries; a pod that restarts itself would hide failures from it.
			RestartPolicy: v1.RestartPolicyNever,
			Containers: []v1.Container{{
				Name:      primaryContainer,
				Image:     tmpl.Image,
				Args:      tmpl.Args,
				Env:       toEnv(tmpl.Env),
				Resources: v1.ResourceRequirements{Requests: requests, Limits: requests},
			}},
		},
	}
	if tmpl.Interrupts {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, v1.Toleration{
			Key: "flyte.org/interruptible", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule,
		})
	}
	return pod, nil
}

// GetTaskPhase maps the pod's phase and container statuses to a task phase.
func (Plugin) GetTaskPhase(_ context.Context, _ core.TaskContext, pod *v1.Pod) (core.PhaseInfo, error) {
	switch pod.Status.Phase {
	case v1.PodPending:
		return core.PhaseInfo{Phase: core.PhaseQueued, Reason: "pod is pending"}, nil
	case v1.PodRunning:
		return core.PhaseInfoRunning(1, "pod is running"), nil
	case v1.PodSucceeded:
		return core.PhaseInfoSuccess("pod succeeded"), nil
	case v1.PodFailed:
		// Evicted or OOM-killed pods did nothing wrong themselves, so their failure is retryable.
		retryable := pod.Status.Reason == "Evicted" || oomKilled(pod)
		return core.PhaseInfoFailure(retryable, fmt.Errorf("pod failed: %s", pod.Status.Message)), nil
	default:
		return core.PhaseInfo{Phase: core.PhaseUndefined, Reason: string(pod.Status.Phase)}, nil
	}
}

func oomKilled(pod *v1.Pod) bool {
	for _, status := range pod.Status.ContainerStatuses {
		if t := status.State.Terminated; t != nil && t.Reason == "OOMKilled" {
			return true
		}
	}
	return false
}

func toResourceList(resources map[string]string) (v1.ResourceList, error) {
	list := v1.ResourceList{}
	for name, quantity := range resources {
		q, err := resource.ParseQuantity(quantity)
		if err != nil {
			return nil, fmt.Errorf("resource %s=%q: %w", name, quantity, err)
		}
		list[v1.ResourceName(name)] = q
	}
	return list, nil
}

// toEnv sorts the variables so that the same task always renders the same pod spec.
func toEnv(env map[string]string) []v1.EnvVar {
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	vars := make([]v1.EnvVar, 0, len(names))
	for _, name := range names {
		vars = append(vars, v1.EnvVar{Name: name, Value: env[name]})
	}
	return vars
}
