//! The exit statuses of `splitlab`: one enum for every subcommand, so a
//! script can tell a broken invariant from a broken lab. The numbers are an
//! interface (CI and `scripts/` compare them) and never change.
use checker::Verdict;
use netlab::NetlabError;

/// How a `splitlab` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; for `run` and `check`, the verdict is valid.
    Success,
    /// 1: `run` or `check` found a broken invariant.
    Invalid,
    /// 2: no verdict (unknown, skipped for an unsupported fault, or the run
    /// broke), or the lab infrastructure failed.
    Failed,
    /// 3: not root.
    NotRoot,
    /// 4: a required tool is missing.
    MissingTool,
    /// 5: bad topology, fault or run id.
    InvalidInput,
    /// 6: a fault needs a kernel feature this machine lacks.
    Unsupported,
    /// 130: Ctrl-C or SIGTERM during bring-up (the partial lab was removed).
    Interrupted,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
            ExitStatus::Failed => 2,
            ExitStatus::NotRoot => 3,
            ExitStatus::MissingTool => 4,
            ExitStatus::InvalidInput => 5,
            ExitStatus::Unsupported => 6,
            ExitStatus::Interrupted => 130,
        }
    }

    /// The status of a judged run.
    pub fn of_verdict(verdict: Verdict) -> ExitStatus {
        match verdict {
            Verdict::Valid => ExitStatus::Success,
            Verdict::Invalid => ExitStatus::Invalid,
            // A merged report is never `not_applicable` (it becomes
            // `unknown` when nothing was judged); treat it as undecided.
            Verdict::Unknown | Verdict::NotApplicable => ExitStatus::Failed,
        }
    }

    /// The status a netlab error ends a command with.
    pub fn of_error(error: &NetlabError) -> ExitStatus {
        match error {
            NetlabError::NotRoot => ExitStatus::NotRoot,
            NetlabError::MissingTool { .. } => ExitStatus::MissingTool,
            NetlabError::Topology(_)
            | NetlabError::InvalidFault(_)
            | NetlabError::RunExists(_)
            | NetlabError::NoSuchRun(_) => ExitStatus::InvalidInput,
            NetlabError::Unsupported(_) => ExitStatus::Unsupported,
            NetlabError::Interrupted => ExitStatus::Interrupted,
            _ => ExitStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        let all = [
            ExitStatus::Success,
            ExitStatus::Invalid,
            ExitStatus::Failed,
            ExitStatus::NotRoot,
            ExitStatus::MissingTool,
            ExitStatus::InvalidInput,
            ExitStatus::Unsupported,
            ExitStatus::Interrupted,
        ];
        let codes: Vec<i32> = all.iter().map(|status| status.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6, 130]);
    }

    #[test]
    fn verdicts_map_to_their_codes() {
        assert_eq!(ExitStatus::of_verdict(Verdict::Valid).code(), 0);
        assert_eq!(ExitStatus::of_verdict(Verdict::Invalid).code(), 1);
        assert_eq!(ExitStatus::of_verdict(Verdict::Unknown).code(), 2);
    }
}
