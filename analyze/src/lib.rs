//! Checks over the span table.
