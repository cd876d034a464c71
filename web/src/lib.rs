//! Web dashboard.
