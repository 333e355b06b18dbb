//! Practice volumes: a sparse-file ext4 image on a loop device with the seed's layout,
//! a by-id directory pointing at it and a config that points at all of it.
//! Used by `lifeboat demo` and by the integration tests.
//! (interface stub: being implemented)
