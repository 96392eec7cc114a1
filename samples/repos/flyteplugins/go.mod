module github.com/flyteorg/flyteplugins

go 1.21

require (
	github.com/flyteorg/flyteidl v1.10.7
	k8s.io/api v0.28.4
	k8s.io/apimachinery v0.28.4
)
