//! The fault phase of `make test` (scripts/faults.sh): `fault-ctl` (src/bin) holds the
//! faults the tests inject, and `tests/faults_e2e.rs` injects them. See the README's
//! Tests section.
