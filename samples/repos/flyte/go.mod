module github.com/flyteorg/flyte

go 1.21

require (
	github.com/flyteorg/flyte/flyteadmin v0.0.0
	github.com/flyteorg/flyte/flytepropeller v0.0.0
)

replace (
	github.com/flyteorg/flyte/flyteadmin => ./flyteadmin
	github.com/flyteorg/flyte/flytepropeller => ./flytepropeller
)
