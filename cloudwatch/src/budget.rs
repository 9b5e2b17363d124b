//! The running count that keeps one decoding within its [`Limits`].

use crate::error::{Error, Result};
use crate::limits::{Limit, Limits};

/// What one body's decoding has used of its [`Limits`].
#[derive(Debug)]
pub(crate) struct Budget<'l> {
    pub(crate) limits: &'l Limits,
    elements: usize,
}

impl<'l> Budget<'l> {
    pub(crate) fn new(limits: &'l Limits) -> Self {
        Budget {
            limits,
            elements: 0,
        }
    }

    /// The error for crossing `limit`.
    pub(crate) fn exceeded(&self, limit: Limit) -> Error {
        Error::too_large(limit, limit.value(self.limits))
    }

    /// Counts one more value of the tree.
    pub(crate) fn take_element(&mut self) -> Result<()> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(self.exceeded(Limit::Elements));
        }
        Ok(())
    }

    /// Checks that a list or map entered at `depth` (the top level is 1) is allowed.
    pub(crate) fn check_depth(&self, depth: usize) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(self.exceeded(Limit::Depth));
        }
        Ok(())
    }

    /// Checks a string's length in bytes.
    pub(crate) fn check_string(&self, len: usize) -> Result<()> {
        if len > self.limits.max_string_bytes {
            return Err(self.exceeded(Limit::StringBytes));
        }
        Ok(())
    }

    /// Checks a list's or map's length.
    pub(crate) fn check_len(&self, len: usize) -> Result<()> {
        if len > self.limits.max_list_len {
            return Err(self.exceeded(Limit::ListLen));
        }
        Ok(())
    }

    /// Checks a body's size.
    pub(crate) fn check_body(&self, len: usize) -> Result<()> {
        if len > self.limits.max_body_bytes {
            return Err(self.exceeded(Limit::BodyBytes));
        }
        Ok(())
    }
}
