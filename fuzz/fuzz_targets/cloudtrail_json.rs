#![no_main]
// Runs credaudit::fuzzing::cloudtrail_json (see src/fuzzing.rs) on each input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    credaudit::fuzzing::cloudtrail_json(data);
});
