//! The bounds on a remote-write request. Decoding refuses a request that exceeds any of them
//! as a whole, before the protobuf is decoded, so no input allocates without bound.
//!
//! They are resource bounds, not Thermostat's rules: a series within them may still be
//! rejected by [`crate::map`] (more than 30 dimensions, a value too long, a native histogram
//! whose buckets span more than [`MAX_BUCKET_INDEX_RANGE`] indices, …).

/// Largest snappy-compressed body accepted (16 MiB).
pub const MAX_COMPRESSED_BYTES: usize = 16 << 20;
/// Largest decompressed size a snappy header may declare (64 MiB); checked before allocating.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;
/// Time series in one request.
pub const MAX_SERIES_PER_REQUEST: usize = 100_000;
/// Labels of one series (including `__name__` and the namespace label; 2.0: reference pairs); the mapping's rule of
/// at most 30 dimensions is stricter and rejects the series alone.
pub const MAX_LABELS_PER_SERIES: usize = 128;
/// Labels in one request, over all series and exemplars (2.0: label reference pairs).
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
/// Remote write 2.0: entries of the symbol table.
pub const MAX_SYMBOLS_PER_REQUEST: usize = 500_000;
/// Remote write 2.0: bytes of one symbol (a label name or value, a help text, a unit).
pub const MAX_SYMBOL_BYTES: usize = MAX_LABEL_VALUE_BYTES;
/// Remote write 2.0: bytes of the whole symbol table.
pub const MAX_SYMBOLS_BYTES_PER_REQUEST: usize = 32 << 20;
/// Spans of one native histogram (negative and positive together).
pub const MAX_SPANS_PER_HISTOGRAM: usize = 4_096;
/// Bucket counts (deltas or absolute counts, negative and positive together) of one native
/// histogram, and custom bounds (`custom_values`) of one.
pub const MAX_BUCKETS_PER_HISTOGRAM: usize = 4_096;
/// Bucket counts and custom bounds over all the native histograms of one request.
pub const MAX_BUCKETS_PER_REQUEST: usize = 4_000_000;
/// Widest range of bucket indices (from the first to the last bucket, gaps included) of one
/// side of a native histogram; a wider one is a rejected histogram (the mapping's rule), since
/// its state would be kept densely.
pub const MAX_BUCKET_INDEX_RANGE: i64 = 8_192;
