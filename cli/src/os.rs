//! Operating-system details: who is running keygen (for the audit log) and
//! reading a key from standard input without echoing it on a terminal.

use std::ffi::CStr;
use std::io::{BufRead, IsTerminal, Read, Write};

/// Longest key accepted on standard input; real keys are 52–53 bytes.
const MAX_KEY_INPUT: u64 = 4096;

/// The OS user for the audit log: the account of the effective uid (from the
/// password database), falling back to `$USER`/`$LOGNAME`, then `uid:N`.
/// Under sudo the invoking user is recorded too: `root (sudo: alice)`.
pub fn user_name() -> String {
    let euid = effective_uid();
    let name = passwd_name(euid)
        .or_else(|| env_nonempty("USER"))
        .or_else(|| env_nonempty("LOGNAME"))
        .unwrap_or_else(|| format!("uid:{euid}"));
    match env_nonempty("SUDO_USER") {
        Some(invoker) if invoker != name => format!("{name} (sudo: {invoker})"),
        _ => name,
    }
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn effective_uid() -> libc::uid_t {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn passwd_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero bytes are a valid `passwd` (null pointers, zeros).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live, writable memory of the stated
        // size; getpwuid_r is the thread-safe variant and writes only there.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside
        // `buf`, which is still alive.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        let name = name.to_string_lossy().trim().to_owned();
        return (!name.is_empty()).then_some(name);
    }
}

/// Reads one key from standard input: the first line, surrounding whitespace
/// trimmed. On a terminal, prompts on stderr and turns echo off.
///
/// # Errors
///
/// A message for the operator when nothing usable was read.
pub fn read_key_from_stdin(label: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let echo = if interactive {
        eprint!("Paste the {label} and press Enter: ");
        let _ = std::io::stderr().flush();
        EchoGuard::disable()
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin
        .lock()
        .take(MAX_KEY_INPUT)
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the {label} from standard input: {e}"));
    drop(echo);
    if interactive {
        eprintln!();
    }
    read?;
    let key = line.trim();
    if key.is_empty() {
        return Err(format!(
            "no {label} given: pass it on standard input (or as an argument)"
        ));
    }
    Ok(key.to_owned())
}

/// Longest password line read.
const MAX_PASSWORD_INPUT: u64 = 4096;

/// Reads a new password: on a terminal, prompted twice on stderr with echo
/// off; otherwise the first line of standard input (line ending removed).
///
/// # Errors
///
/// A message for the operator when nothing usable was read.
pub fn read_password(user: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .take(MAX_PASSWORD_INPUT)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err("no password given on standard input".into());
        }
        return Ok(password);
    }
    let first = prompt_hidden(&format!("New password for {user}: "))?;
    let second = prompt_hidden("Repeat the password: ")?;
    if first != second {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}

fn prompt_hidden(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let echo = EchoGuard::disable();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_PASSWORD_INPUT)
        .read_line(&mut line);
    drop(echo);
    eprintln!();
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Restores the terminal's echo flag when dropped.
struct EchoGuard(libc::termios);

impl EchoGuard {
    fn disable() -> Option<EchoGuard> {
        // SAFETY: all-zero bytes are a valid `termios` for tcgetattr to fill.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a pointer to a live termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut term) } != 0 {
            return None;
        }
        let saved = term;
        term.c_lflag &= !libc::ECHO;
        // SAFETY: as above; the struct came from tcgetattr.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term) } != 0 {
            return None;
        }
        Some(EchoGuard(saved))
    }
}

impl Drop for EchoGuard {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `disable`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn someone_is_running_this() {
        assert!(!user_name().is_empty());
    }
}
