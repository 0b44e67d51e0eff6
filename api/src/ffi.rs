//! The C functions of `libhaapi.so` / `libhaapi.a`, declared in
//! `include/clusterapi.h`: SureHA's five calls, with the manual's
//! signatures (`char *`, `int`), plus `haapi_lasterror`. Each reads the
//! environment ([`Client::from_env`]), makes one request, and returns 0 or
//! -1; no panic escapes.

use crate::client::{Client, Error};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// Why this thread's last call failed (empty after a success).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs one call for C: 0 on success, -1 on any failure (recorded for
/// [`haapi_lasterror`]), a panic included.
fn run(call: impl FnOnce() -> Result<(), Error>) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(call));
    let message = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("internal error (panic) in libhaapi".to_owned()),
    };
    let code = if message.is_some() { -1 } else { 0 };
    let message = message.unwrap_or_default().replace('\0', " ");
    let _ = catch_unwind(|| {
        LAST_ERROR.with(|last| *last.borrow_mut() = CString::new(message).unwrap_or_default());
    });
    code
}

/// A C string argument as UTF-8.
///
/// # Safety
/// `arg` is NULL or points to a NUL-terminated string.
unsafe fn text<'a>(arg: *const c_char, what: &str) -> Result<&'a str, Error> {
    if arg.is_null() {
        return Err(Error::Invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let arg = unsafe { CStr::from_ptr(arg) };
    arg.to_str()
        .map_err(|_| Error::Invalid(format!("{what} is not UTF-8")))
}

/// Tells hasvrd to start expecting heartbeats for the service (`open`).
/// 0 on success, -1 otherwise.
///
/// # Safety
/// `name` is NULL or points to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn apiopen(name: *mut c_char) -> c_int {
    // SAFETY: forwarded contract.
    run(|| Client::from_env()?.open(unsafe { text(name, "the service name") }?))
}

/// One heartbeat: the service works (`ok`). 0 on success, -1 otherwise.
///
/// # Safety
/// `name` is NULL or points to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn apiok(name: *mut c_char) -> c_int {
    // SAFETY: forwarded contract.
    run(|| Client::from_env()?.ok(unsafe { text(name, "the service name") }?))
}

/// The service does not work (`err`). 0 on success, -1 otherwise.
///
/// # Safety
/// `name` is NULL or points to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn apierr(name: *mut c_char) -> c_int {
    // SAFETY: forwarded contract.
    run(|| Client::from_env()?.err(unsafe { text(name, "the service name") }?, ""))
}

/// Stop expecting heartbeats for the service (`close`). 0 on success, -1
/// otherwise.
///
/// # Safety
/// `name` is NULL or points to a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn apiclose(name: *mut c_char) -> c_int {
    // SAFETY: forwarded contract.
    run(|| Client::from_env()?.close(unsafe { text(name, "the service name") }?))
}

/// Asks hasvrd to run `cmd` (`BRINGIN`, `BRINGOUT` or `FAILOVER`) on the
/// service; hasvrd accepts it only from root or its admin group. 0 when
/// accepted, -1 otherwise.
///
/// # Safety
/// `cmd` and `name` are NULL or point to NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn apicmd(cmd: *mut c_char, name: *mut c_char) -> c_int {
    run(|| {
        // SAFETY: forwarded contract.
        let (cmd, name) = unsafe { (text(cmd, "the command")?, text(name, "the service name")?) };
        Client::from_env()?.cmd(cmd, name)
    })
}

/// Why the calling thread's last call returned -1 (an empty string after a
/// success). The pointer stays valid until the thread's next call.
#[unsafe(no_mangle)]
pub extern "C" fn haapi_lasterror() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|last| last.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}
