//! Printing a command's report on stdout (`sql`, the benches).

/// As `println!`, for the lines of a report on stdout: when the reader has gone away (`tracegap
/// bench check | head -3`), the rest is dropped quietly instead of panicking on the broken pipe,
/// and the command still ends with its own exit code.
macro_rules! report_line {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($argument)*);
    }};
}

pub(crate) use report_line;
