//! Head training from the store.
