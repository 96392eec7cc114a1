module github.com/flyteorg/flytepropeller

go 1.21

require (
	github.com/flyteorg/flyteidl v1.10.7
	github.com/flyteorg/flyteplugins v1.1.40
	github.com/sampleorg/backoff v0.3.1
	k8s.io/apimachinery v0.28.4
	k8s.io/client-go v0.28.4
)
