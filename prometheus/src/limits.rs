//! The bounds on a remote-write request. Decoding refuses a request that exceeds any of them
//! as a whole, before the protobuf is decoded, so no input allocates without bound.
//!
//! They are resource bounds, not Thermostat's rules: a series within them may still be
//! rejected by [`crate::map_v1`] (more than 30 dimensions, a value too long, …).

/// Largest snappy-compressed body accepted (16 MiB).
pub const MAX_COMPRESSED_BYTES: usize = 16 << 20;
/// Largest decompressed size a snappy header may declare (64 MiB); checked before allocating.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;
/// Time series in one request.
pub const MAX_SERIES_PER_REQUEST: usize = 100_000;
/// Labels of one series (including `__name__` and the namespace label); the mapping's rule of
/// at most 30 dimensions is stricter and rejects the series alone.
pub const MAX_LABELS_PER_SERIES: usize = 128;
/// Labels in one request, over all series and exemplars.
pub const MAX_LABELS_PER_REQUEST: usize = 2_000_000;
/// Bytes of one label name.
pub const MAX_LABEL_NAME_BYTES: usize = 1024;
/// Bytes of one label value.
pub const MAX_LABEL_VALUE_BYTES: usize = 16 * 1024;
/// Samples in one request, over all series.
pub const MAX_SAMPLES_PER_REQUEST: usize = 1_000_000;
/// Exemplars in one request, over all series.
pub const MAX_EXEMPLARS_PER_REQUEST: usize = 100_000;
/// Native histograms in one request, over all series.
pub const MAX_HISTOGRAMS_PER_REQUEST: usize = 100_000;
/// Metadata entries in one request.
pub const MAX_METADATA_PER_REQUEST: usize = 100_000;
