//! TFTP server (in progress).
