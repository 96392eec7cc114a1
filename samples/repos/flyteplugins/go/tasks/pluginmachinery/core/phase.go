package core

import "fmt"

// Phase is what a plugin reports about its task after each call to Handle.
type Phase int8

const (
	PhaseUndefined Phase = iota
	PhaseNotReady
	PhaseWaitingForResources
	PhaseQueued
	PhaseInitializing
	PhaseRunning
	PhaseSuccess
	PhaseRetryableFailure
	PhasePermanentFailure
)

var phaseNames = map[Phase]string{
	PhaseUndefined:           "Undefined",
	PhaseNotReady:            "NotReady",
	PhaseWaitingForResources: "WaitingForResources",
	PhaseQueued:              "Queued",
	PhaseInitializing:        "Initializing",
	PhaseRunning:             "Running",
	PhaseSuccess:             "Success",
	PhaseRetryableFailure:    "RetryableFailure",
	PhasePermanentFailure:    "PermanentFailure",
}

func (p Phase) String() string {
	if name, ok := phaseNames[p]; ok {
		return name
	}
	return fmt.Sprintf("Phase(%d)", int8(p))
}

// IsTerminal is true when the plugin will not be called again for this attempt.
func (p Phase) IsTerminal() bool {
	return p == PhaseSuccess || p == PhaseRetryableFailure || p == PhasePermanentFailure
}

// PhaseInfo carries the phase plus a human-readable reason and an optional error.
type PhaseInfo struct {
	Phase   Phase
	Version uint32
	Reason  string
	Err     error
}

// PhaseInfoRunning reports progress; bump version when the reason changes so the change is recorded.
func PhaseInfoRunning(version uint32, reason string) PhaseInfo {
	return PhaseInfo{Phase: PhaseRunning, Version: version, Reason: reason}
}

// PhaseInfoSuccess reports that the task finished.
func PhaseInfoSuccess(reason string) PhaseInfo {
	return PhaseInfo{Phase: PhaseSuccess, Reason: reason}
}

// PhaseInfoFailure reports a failure; retryable failures consume one of the task's retries.
func PhaseInfoFailure(retryable bool, err error) PhaseInfo {
	phase := PhasePermanentFailure
	if retryable {
		phase = PhaseRetryableFailure
	}
	return PhaseInfo{Phase: phase, Reason: err.Error(), Err: err}
}
