//! Memory for weights that decode streams: backed by 2 MiB pages where the OS allows.
//!
//! Why: a decode step reads every weight once, front to back. With 4 KiB pages that is a
//! TLB miss and a page walk every 4 KiB, and one core's stream then falls short of what
//! the memory delivers: on this project's Xeon host a packed Q8_0 head streamed at
//! 12.9–13.1 GB/s on 4 KiB pages and 14.2–14.6 on 2 MiB ones (`membw`: 13.2–13.6 against
//! 15.1–15.3). Linux backs a range with transparent huge pages when it is advised to
//! (`MADV_HUGEPAGE`, the default `madvise` mode of most distributions) before its pages
//! are first touched. Elsewhere, or where the kernel refuses, the memory is ordinary.

use std::mem::MaybeUninit;

/// Advises the OS to back `buf` with huge pages; call it before the memory is first
/// written. Only advice: contents and validity never change, and a refusal (no THP
/// support, THP disabled) is ignored.
pub fn advise_huge_pages<T>(buf: &[MaybeUninit<T>]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = buf.as_ptr() as usize;
        let end = start + std::mem::size_of_val(buf);
        // madvise wants a page-aligned start; the partial pages at either end stay as
        // they are.
        let (lo, hi) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if hi > lo {
            // SAFETY: the range lies inside `buf`, which this process owns; MADV_HUGEPAGE
            // changes only how the kernel backs the pages, never their contents.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// `len` zero bytes, advised to huge pages before they are touched.
pub(crate) fn zeroed_streamed(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    advise_huge_pages(v.spare_capacity_mut());
    v.resize(len, 0);
    v
}
