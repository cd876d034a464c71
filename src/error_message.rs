//! The line a failed command prints: the error and its causes, each said once, and where the
//! spills go when a disk is full.

use std::io::ErrorKind;

/// The error's message, then each cause whose message it does not already hold. The analysis
/// errors quote their cause, and DataFusion's and Arrow's errors quote theirs: printed whole, a
/// full disk while spilling said "No space left on device" five times in one line.
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    if error.chain().any(is_disk_full) {
        message.push_str(&format!(
            " (a disk is full; queries spill past the memory limit into the temporary directory {}: \
             free space there, point TMPDIR at a larger disk, or raise --memory-limit)",
            std::env::temp_dir().display()
        ));
    }
    message
}

fn is_disk_full(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause.downcast_ref::<std::io::Error>().is_some_and(|error| error.kind() == ErrorKind::StorageFull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let error = anyhow::Error::new(std::io::Error::from(ErrorKind::NotFound))
            .context("Io error: entity not found")
            .context("view child_parent_matches failed: Io error: entity not found")
            .context("tracegap check");
        assert_eq!(
            error_message(&error),
            "tracegap check: view child_parent_matches failed: Io error: entity not found"
        );
    }

    #[test]
    fn a_full_disk_names_the_directory_of_spills() {
        // ENOSPC, as a spill file's write returns it.
        let error = anyhow::Error::new(std::io::Error::from_raw_os_error(28))
            .context("Arrow error: Io error: No space left on device (os error 28)")
            .context("view child_parent_matches failed: Arrow error: Io error: No space left on device (os error 28)");
        let message = error_message(&error);
        assert_eq!(message.matches("No space left on device").count(), 1, "{message}");
        assert!(message.contains(&format!("temporary directory {}", std::env::temp_dir().display())), "{message}");
        assert!(message.contains("TMPDIR"), "{message}");
    }

    #[test]
    fn other_errors_get_no_hint_about_disks() {
        let error = anyhow::anyhow!("check orphaned_span failed: Resources exhausted");
        assert_eq!(error_message(&error), "check orphaned_span failed: Resources exhausted");
    }
}
