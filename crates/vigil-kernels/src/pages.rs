//! Memory for weights that decode streams: backed by 2 MiB pages where the OS allows.
//!
//! Why: a decode step reads every weight once, front to back. With 4 KiB pages that is a
//! TLB miss and a page walk every 4 KiB, and one core's stream then falls short of what
//! the memory delivers: on this project's Xeon host a packed Q8_0 head streamed at
//! 12.9–13.1 GB/s on 4 KiB pages and 14.2–14.6 on 2 MiB ones (`membw`: 13.2–13.6 against
//! 15.1–15.3). Linux backs a range with transparent huge pages when it is advised to
//! (`MADV_HUGEPAGE`, the default `madvise` mode of most distributions) before its pages
//! are first touched, and only in whole, 2 MiB-aligned pages.
//!
//! That last condition is why a model's decode copies share a [`StreamArena`]: one
//! allocation per matrix puts a 3 MB matrix in a mapping of its own that holds at most
//! one aligned 2 MiB page, and a half-megabyte one in none, so about half of a Qwen2.5
//! 0.5B shape's copies sat on 4 KiB pages. The arena places copies one after another in
//! a few large, 2 MiB-aligned mappings ([`ArenaBytes`] keeps its mapping alive).
//! Elsewhere, or where the kernel refuses, the memory is ordinary.

use std::mem::MaybeUninit;
use std::sync::Arc;

/// Advises the OS to back `buf` with huge pages; call it before the memory is first
/// written. Only advice: contents and validity never change, and a refusal (no THP
/// support, THP disabled) is ignored.
pub fn advise_huge_pages<T>(buf: &[MaybeUninit<T>]) {
    advise_range(buf.as_ptr() as usize, std::mem::size_of_val(buf));
}

fn advise_range(start: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let end = start + len;
        // madvise wants a page-aligned start; the partial pages at either end stay as
        // they are.
        let (lo, hi) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if hi > lo {
            // SAFETY: the caller owns the range; MADV_HUGEPAGE changes only how the kernel
            // backs the pages, never their contents.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

/// `len` zero bytes, advised to huge pages before they are touched.
pub(crate) fn zeroed_streamed(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    advise_huge_pages(v.spare_capacity_mut());
    v.resize(len, 0);
    v
}

/// The size and alignment of a huge page (x86-64 and most arm64 kernels).
const HUGE_PAGE: usize = 2 << 20;

/// Where each copy starts within a region: a cache line, so no two copies share one.
const COPY_ALIGN: usize = 64;

/// A region size for arenas given no size ([`StreamArena::default`]).
const DEFAULT_REGION: usize = 64 << 20;

/// One zeroed allocation the arena carves copies from; freed when the last
/// [`ArenaBytes`] in it (and the arena) let go.
struct Region {
    ptr: *mut u8,
    len: usize,
    /// How the memory was obtained, so `Drop` gives it back the same way.
    mapped: bool,
}

// SAFETY: a region is plain memory; the arena hands out each byte range once, to be
// written through a unique borrow before it is shared read-only (`ArenaBytes`).
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl Region {
    /// `len` zero bytes (rounded up to whole huge pages), 2 MiB-aligned and advised to
    /// huge pages where the OS maps memory that way; ordinary heap memory otherwise.
    fn new(len: usize) -> Region {
        let len = len.max(1).next_multiple_of(HUGE_PAGE);
        #[cfg(target_os = "linux")]
        if let Some(ptr) = Self::map_aligned(len) {
            return Region {
                ptr,
                len,
                mapped: true,
            };
        }
        let heap = Box::into_raw(vec![0u8; len].into_boxed_slice()) as *mut u8;
        Region {
            ptr: heap,
            len,
            mapped: false,
        }
    }

    /// An anonymous mapping of `len` bytes starting on a huge-page boundary (over-map by
    /// one huge page, unmap the ends), advised to huge pages before any page is touched.
    /// `MAP_NORESERVE`: a region sized for a whole file costs nothing where unused.
    #[cfg(target_os = "linux")]
    fn map_aligned(len: usize) -> Option<*mut u8> {
        let span = len.checked_add(HUGE_PAGE)?;
        // SAFETY: a fresh anonymous mapping, no address hint; checked for failure below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let raw = raw as usize;
        let start = raw.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (start - raw, raw + span - (start + len));
        // SAFETY: both ranges lie inside the mapping just made and nothing refers to them.
        unsafe {
            if head > 0 {
                libc::munmap(raw as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((start + len) as *mut libc::c_void, tail);
            }
        }
        advise_range(start, len);
        Some(start as *mut u8)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.mapped {
            #[cfg(target_os = "linux")]
            // SAFETY: `ptr..ptr + len` is the mapping `map_aligned` kept, and no
            // `ArenaBytes` into it is left (each holds the region's `Arc`).
            unsafe {
                libc::munmap(self.ptr as *mut libc::c_void, self.len)
            };
        } else {
            // SAFETY: `ptr` came from `Box::into_raw` of a `len`-byte boxed slice.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
        }
    }
}

/// A bump allocator for the copies a decode step streams (a model's weights in their
/// decode layout): each copy goes right after the previous one, in a region of whole,
/// aligned huge pages, so every copy lies on huge pages however small it is (see the
/// module docs). Nothing is freed on its own: a region goes when the arena and every
/// copy in it are gone. Sized for a model with [`StreamArena::with_region_size`] (e.g.
/// the file's length: one region then holds every copy, and the unused tail is never
/// touched, so it costs no memory).
pub struct StreamArena {
    region_size: usize,
    current: Option<Arc<Region>>,
    /// Bytes of `current` handed out.
    used: usize,
}

impl Default for StreamArena {
    fn default() -> Self {
        Self::with_region_size(DEFAULT_REGION)
    }
}

impl StreamArena {
    /// An arena whose regions are `bytes` long (rounded up to whole huge pages); a copy
    /// larger than that gets a region of its own size.
    pub fn with_region_size(bytes: usize) -> Self {
        StreamArena {
            region_size: bytes,
            current: None,
            used: 0,
        }
    }

    /// `len` zero bytes of the arena, written by `fill` and then shared read-only; `fill`'s
    /// result comes back with them.
    pub fn alloc_with<R>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> (ArenaBytes, R) {
        let offset = self.used.next_multiple_of(COPY_ALIGN);
        let fits = self
            .current
            .as_ref()
            .is_some_and(|r| offset.checked_add(len).is_some_and(|end| end <= r.len));
        let (region, offset) = if fits {
            (self.current.clone().expect("checked above"), offset)
        } else {
            let region = Arc::new(Region::new(len.max(self.region_size)));
            // A copy too large for the regions gets its own and leaves the current one
            // for the copies after it.
            if len <= self.region_size || self.current.is_none() {
                self.current = Some(region.clone());
                self.used = 0;
            }
            (region, 0)
        };
        if self
            .current
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &region))
        {
            self.used = offset + len;
        }
        // SAFETY: `offset..offset + len` lies inside the region (checked or fresh), and the
        // arena hands each range out once (`used` only grows), so nothing else refers to
        // these bytes while `fill` writes them.
        let bytes = unsafe { std::slice::from_raw_parts_mut(region.ptr.add(offset), len) };
        let result = fill(bytes);
        (
            ArenaBytes {
                region,
                offset,
                len,
            },
            result,
        )
    }
}

/// Bytes a [`StreamArena`] handed out, read-only; they keep their region alive.
#[derive(Clone)]
pub struct ArenaBytes {
    region: Arc<Region>,
    offset: usize,
    len: usize,
}

impl std::ops::Deref for ArenaBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the range lies inside the region, which this value keeps alive, and was
        // written once before this value existed; no one writes it since.
        unsafe { std::slice::from_raw_parts(self.region.ptr.add(self.offset), self.len) }
    }
}

impl std::fmt::Debug for ArenaBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArenaBytes({} bytes)", self.len)
    }
}
