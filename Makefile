# Entry points; scripts/ holds the real work.
.PHONY: demo test bench build

build:
	go build -o switchyard ./cmd/switchyard

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

# The sysbench harness: direct vs bare TCP relay vs Switchyard on a sandbox.
# make bench BENCHFLAGS=-full for the whole matrix (about 75 minutes).
bench:
	./scripts/deps.sh
	go run ./test/bench $(BENCHFLAGS)
