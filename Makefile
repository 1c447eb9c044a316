# Entry points; scripts/ holds the real work.
.PHONY: demo test bench build oracle

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

# The read-only oracle over every .test file of MariaDB's mysql-test suite
# (Debian's mariadb-test package): every statement the router would send to a
# replica runs in a read-only transaction on a scratch server (test/oracle).
oracle:
	./scripts/deps.sh
	SWITCHYARD_REQUIRE_SANDBOX=1 go test -count=1 ./test/oracle -run TestOracleFull -oracle.full -timeout 90m -v
