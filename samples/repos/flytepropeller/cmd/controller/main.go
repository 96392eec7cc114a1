// Command controller runs the flytepropeller workflow controller.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/flyteorg/flytepropeller/pkg/controller"
	"github.com/flyteorg/flytepropeller/pkg/controller/config"
)

func main() {
	configPath := flag.String("config", "/etc/flyte/config/propeller.yaml", "path to the controller config")
	workers := flag.Int("workers", 0, "number of reconcile workers (overrides the config when > 0)")
	flag.Parse()

	cfg, err := config.Load(*configPath)
	if err != nil {
		log.Fatalf("loading config %s: %v", *configPath, err)
	}
	if *workers > 0 {
		cfg.Workers = *workers
	}

	// Stop cleanly on SIGTERM so in-flight rounds finish and their status is written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := controller.New(cfg, controller.NewInMemoryStore())
	if err != nil {
		log.Fatalf("creating controller: %v", err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatalf("controller stopped: %v", err)
	}
}
