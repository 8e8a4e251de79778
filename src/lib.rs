//! Root package: owns the cross-crate tests/ and benches/.
