//! The panic boundary: no unwind ever crosses into C. Each export that can
//! panic runs its body in [`guard`], which turns a panic into that export's
//! failure value (`HK_ERR_INTERNAL`, `HK_STATUS_UNAVAILABLE`, …) and a
//! message for `hk_last_error_message`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::set_error;

/// Runs `f`; if it panics, records `"{function}: internal error: …"` as the
/// thread's last error and returns `on_panic` instead.
pub(crate) fn guard<T>(function: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            set_error(format!(
                "{function}: internal error: {}",
                panic_message(&*payload)
            ));
            on_panic
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last_error;

    #[test]
    fn guard_turns_a_panic_into_a_value_and_a_message() {
        let got = guard("hk_test", 42, || -> i32 { panic!("boom") });
        assert_eq!(got, 42);
        assert_eq!(last_error(), "hk_test: internal error: boom");
        let got = guard("hk_test", 0, || 7);
        assert_eq!(got, 7);
    }
}
