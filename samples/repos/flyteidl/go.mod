module github.com/flyteorg/flyteidl

go 1.21

require google.golang.org/protobuf v1.31.0
