//! Output macros: results to stdout through a writer whose errors are returned (a closed pipe ends the command quietly, see `main`), messages to stderr ignoring errors.

/// Writes to stdout; evaluates to `std::io::Result<()>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// Writes a line to stdout; evaluates to `std::io::Result<()>`.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes a message to stderr; a closed or failing stderr is ignored (never a panic).
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!($($arg)*))
    };
}

/// Writes a message line to stderr, ignoring errors.
macro_rules! noteln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
