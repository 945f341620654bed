//! End-to-end tests of ferry live in `it/` (one integration-test binary, `tests/it/main.rs`),
//! with their data files in `fixtures/`. They run the real `ferry` binary
//! (`ferry_testkit::ferry_bin()`), built first by `scripts/test.sh`. This library is empty.
