#![no_main]
// Runs credaudit::fuzzing::credential_report_csv (see src/fuzzing.rs) on each input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    credaudit::fuzzing::credential_report_csv(data);
});
