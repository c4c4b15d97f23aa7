//! A window of a journal segment mapped (shared) into memory: what is
//! copied into it is in the kernel's page cache at once, so an append is
//! durable against `kill -9` without a system call. The crate's only
//! `unsafe` code (creating, writing and removing the mapping) is here.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The part of a segment file that is mapped (shared) for appending: what
/// is copied into it is in the kernel's page cache at once.
pub struct Window {
    ptr: std::ptr::NonNull<u8>,
    /// Where it starts in the file (a multiple of [`MAP_ALIGN`]).
    start: u64,
    len: usize,
}

// SAFETY: the mapping is owned by the window and only touched under the
// journal's lock.
unsafe impl Send for Window {}

impl Window {
    /// Maps `len` bytes of `file` from `start`, which the file already
    /// holds (allocated, see [`reserve`]).
    pub fn map(file: &File, start: u64, len: usize) -> io::Result<Window> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh mapping (the kernel picks the address) of a file
        // region that exists; nothing else maps or shrinks it while the
        // window lives (the journal's directory is private and locked).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                start,
            )?
        };
        let ptr = std::ptr::NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Window { ptr, start, len })
    }

    /// Whether `n` bytes from file offset `at` are inside the window.
    pub fn holds(&self, at: u64, n: usize) -> bool {
        at >= self.start && at - self.start + n as u64 <= self.len as u64
    }

    /// Copies the record `rec` (its length prefix first) to file offset
    /// `at`, which [`Window::holds`]: the prefix last, so that a record
    /// cut short (the process killed while copying it) reads as the end
    /// of the segment's data (a zero length), never as a record.
    pub fn put(&mut self, at: u64, rec: &[u8]) {
        assert!(rec.len() >= 4 && self.holds(at, rec.len()));
        let offset = (at - self.start) as usize;
        // SAFETY: in bounds (asserted) of a live mapping this window owns.
        unsafe {
            let dst = self.ptr.as_ptr().add(offset);
            std::ptr::copy_nonoverlapping(rec.as_ptr().add(4), dst.add(4), rec.len() - 4);
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            let prefix = [rec[0], rec[1], rec[2], rec[3]];
            dst.cast::<[u8; 4]>().write_unaligned(prefix);
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Window starts are multiples of this (of any page size).
pub const MAP_ALIGN: u64 = 64 << 10;

/// Allocates `len` bytes of `file` from `offset` (growing it) by writing
/// zeros, so that copying into a mapping of them never meets a full disk:
/// that fails here, with the kernel's error (ENOSPC, EFBIG under
/// `ulimit -f`, EROFS). Written, not `fallocate`d: the pages are then in
/// the page cache already, and copying into them costs no read.
pub fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = offset;
    while at < offset + len {
        let n = (offset + len - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Whether appends to `file` may go through a mapping: on filesystems that
/// overwrite a reserved block in place (ext2/3/4, XFS, tmpfs). On others
/// (btrfs, ZFS, bcachefs, network filesystems) a write into a mapping may
/// need new space when it lands, and a full disk would then kill the
/// process (SIGBUS) instead of failing an append.
pub fn mappable(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        const EXT: u64 = 0xEF53;
        const XFS: u64 = 0x5846_5342;
        const TMPFS: u64 = 0x0102_1994;
        rustix::fs::fstatfs(file).is_ok_and(|s| matches!(s.f_type as u64, EXT | XFS | TMPFS))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}
