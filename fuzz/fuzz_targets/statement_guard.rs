//! The statement guard (`iris_query::statement`) on arbitrary text: it never panics, never overflows
//! its stack, and whatever it accepts is within the limits — never an `EXPLAIN` for a scoped
//! principal, never deeper or wider than allowed. Run: `cargo +nightly fuzz run statement_guard`
//! (from `fuzz/`); seeds in `corpus/statement_guard/`.
#![no_main]

use iris_query::statement::{GUARD_STACK_BYTES, StatementError, StatementLimits, check_now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let sql = sql.to_owned();
    // The engine checks on a thread of this size; so does the target.
    let run = std::thread::Builder::new()
        .stack_size(GUARD_STACK_BYTES)
        .spawn(move || {
            let limits = StatementLimits::default();
            let scoped = check_now(&sql, &limits, false);
            let operator = check_now(&sql, &limits, true);
            if let Ok(c) = &scoped {
                assert!(c.depth <= limits.max_depth && c.nodes <= limits.max_nodes);
                // What a scoped principal may run, the operator may too.
                assert!(operator.is_ok(), "{sql:?}");
            }
            if operator.is_ok() && scoped.is_err() {
                // The only difference between them is EXPLAIN.
                assert_eq!(scoped.err(), Some(StatementError::Explain), "{sql:?}");
            }
        })
        .expect("guard thread");
    run.join().expect("the guard does not panic");
});
