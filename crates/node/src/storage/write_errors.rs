//! Write and fsync errors are returned, never retried or swallowed: the
//! driver turns them into a fail-stop (`NodeError::is_fail_stop`, exit code
//! `FAIL_STOP_EXIT_CODE`). `/dev/full` stands in for a full disk.
use std::fs::OpenOptions;
use std::io;

use wire::{Entry, KvOp, Payload};

use super::tests::TempDir;
use super::*;

fn full_disk() -> File {
    OpenOptions::new()
        .append(true)
        .open("/dev/full")
        .expect("/dev/full")
}

fn entry(index: u64) -> Entry {
    Entry {
        term: 1,
        index,
        payload: Payload::Command {
            client: 1,
            seq: index,
            op: KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        },
    }
}

fn is_enospc(error: &StorageError) -> bool {
    matches!(error, StorageError::Io { source, .. } if source.raw_os_error() == Some(libc_enospc()))
}

/// ENOSPC without a libc dependency: what `/dev/full` answers a write with.
fn libc_enospc() -> i32 {
    io::Error::from(io::ErrorKind::StorageFull)
        .raw_os_error()
        .unwrap_or(28)
}

#[test]
fn a_failed_log_write_is_an_error_that_stops_the_node() {
    let dir = TempDir::new("enospc-log");
    let (mut storage, _, _) = Storage::open(&dir.0, "n1 c1", true).expect("open");
    storage.append(None, &[entry(1)]).expect("first append");
    storage.sync().expect("sync");
    storage.log = full_disk();
    let error = storage.append(None, &[entry(2)]).unwrap_err();
    assert!(is_enospc(&error), "{error}");
    assert!(error.to_string().contains("log"), "names the file: {error}");
    let stop = crate::NodeError::Driver(crate::driver::DriverError::Storage(error));
    assert!(stop.is_fail_stop());
    // What was durable before the failure is still there after a restart.
    drop(storage);
    let (storage, _, _) = Storage::open(&dir.0, "n1 c1", false).expect("reopen");
    assert_eq!(storage.last_index(), 1);
}

#[test]
fn a_failed_meta_write_is_an_error() {
    let dir = TempDir::new("enospc-meta");
    let (mut storage, _, _) = Storage::open(&dir.0, "n1 c1", true).expect("open");
    storage.meta = full_disk();
    let error = storage.persist_meta(3, Some(2)).unwrap_err();
    assert!(is_enospc(&error), "{error}");
}

#[test]
fn a_refusal_at_start_is_not_a_fail_stop() {
    let refused = crate::NodeError::Storage(StorageError::Empty("/nowhere".into()));
    assert!(!refused.is_fail_stop());
}
