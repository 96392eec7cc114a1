// Package config holds the settings of the workflow controller.
package config

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Config is read once at start-up; every field has a default so an empty file is valid.
type Config struct {
	// Workers is the number of goroutines that reconcile workflows in parallel.
	Workers int `json:"workers"`
	// DownstreamEval is how long to wait before re-checking a workflow that is waiting on an external system.
	DownstreamEval Duration `json:"downstream-eval-duration"`
	// MaxWorkflowRetries bounds system-level retries of a round that failed for reasons outside user code.
	MaxWorkflowRetries int `json:"max-workflow-retries"`
	// MaxParallelism limits how many nodes of one workflow may run at the same time; 0 means unlimited.
	MaxParallelism int `json:"max-parallelism"`
	// GCInterval is how often finished workflows older than TTL are deleted.
	GCInterval Duration `json:"gc-interval"`
	TTL        Duration `json:"ttl"`
}

// Duration is a time.Duration that reads from strings such as "30s" or "5m".
type Duration struct {
	time.Duration
}

// UnmarshalJSON accepts Go duration strings.
func (d *Duration) UnmarshalJSON(raw []byte) error {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\": %w", err)
	}
	parsed, err := time.ParseDuration(text)
	if err != nil {
		return err
	}
	d.Duration = parsed
	return nil
}

// Default returns the configuration used when no file overrides a field.
func Default() *Config {
	return &Config{
		Workers:            4,
		DownstreamEval:     Duration{30 * time.Second},
		MaxWorkflowRetries: 10,
		MaxParallelism:     25,
		GCInterval:         Duration{30 * time.Minute},
		TTL:                Duration{23 * time.Hour},
	}
}

// Load reads a JSON config file over the defaults and validates the result.
func Load(path string) (*Config, error) {
	cfg := Default()
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return cfg, cfg.Validate()
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("workers must be at least 1, got %d", c.Workers)
	}
	if c.MaxParallelism < 0 {
		return fmt.Errorf("max-parallelism must not be negative, got %d", c.MaxParallelism)
	}
	if c.TTL.Duration < time.Hour {
		return fmt.Errorf("ttl below one hour would delete workflows users are still looking at")
	}
	return nil
}
