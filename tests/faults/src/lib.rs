//! The fault phase of `make test` (scripts/faults.sh): `fault-ctl` (src/bin) holds the
//! faults the tests inject, and `tests/faults_e2e.rs` injects them; `tests/killed_e2e.rs`
//! kills function processes it runs itself (dex_tests::runtime_api). See the README's
//! Tests section.
