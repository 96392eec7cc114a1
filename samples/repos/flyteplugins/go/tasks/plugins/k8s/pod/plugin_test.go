package pod

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/flyteorg/flyteplugins/go/tasks/pluginmachinery/core"
)

type fakeTaskContext struct {
	tmpl  *core.TaskTemplate
	state []byte
}

func (f *fakeTaskContext) Template() *core.TaskTemplate { return f.tmpl }
func (f *fakeTaskContext) ExecutionID() string          { return "f7a1b2c3-n0-0" }
func (f *fakeTaskContext) State() []byte                { return f.state }
func (f *fakeTaskContext) SaveState(state []byte)       { f.state = state }

func pythonTask() *core.TaskTemplate {
	return &core.TaskTemplate{
		ID:        "flytesnacks.basics.say_hello",
		Type:      PythonTaskType,
		Image:     "ghcr.io/flyteorg/flytekit:py3.11",
		Args:      []string{"pyflyte-execute", "--task-module", "basics.hello"},
		Env:       map[string]string{"B": "2", "A": "1"},
		Resources: map[string]string{"cpu": "500m", "memory": "256Mi"},
	}
}

func TestBuildResource(t *testing.T) {
	pod, err := Plugin{}.BuildResource(context.Background(), &fakeTaskContext{tmpl: pythonTask()})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.RestartPolicy != v1.RestartPolicyNever {
		t.Errorf("restart policy: got %s", pod.Spec.RestartPolicy)
	}
	c := pod.Spec.Containers[0]
	if c.Env[0].Name != "A" || c.Env[1].Name != "B" {
		t.Errorf("env not sorted: %v", c.Env)
	}
	if got := c.Resources.Requests.Cpu().MilliValue(); got != 500 {
		t.Errorf("cpu request: got %dm, want 500m", got)
	}
}

func TestBuildResourceNeedsAnImage(t *testing.T) {
	tmpl := pythonTask()
	tmpl.Image = ""
	_, err := Plugin{}.BuildResource(context.Background(), &fakeTaskContext{tmpl: tmpl})
	if err == nil || !strings.Contains(err.Error(), "no container image") {
		t.Fatalf("got %v", err)
	}
}

func TestOOMKilledPodsAreRetryable(t *testing.T) {
	pod := &v1.Pod{Status: v1.PodStatus{
		Phase: v1.PodFailed,
		ContainerStatuses: []v1.ContainerStatus{{
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "OOMKilled"}},
		}},
	}}
	info, err := Plugin{}.GetTaskPhase(context.Background(), nil, pod)
	if err != nil {
		t.Fatal(err)
	}
	if info.Phase != core.PhaseRetryableFailure {
		t.Fatalf("got %v, want RetryableFailure", info.Phase)
	}
}
