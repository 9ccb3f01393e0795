//! xorshift64 (Marsaglia, "Xorshift RNGs", 2003; shifts 13, 7, 17): a
//! seeded stream of numbers that is the same on every run and every
//! machine. For reproducible data, not secrets: the kernel's console burst
//! lines, and the test data and mutations of the workspace's tests (fuzz
//! stand-ins, patterned files, DHCP floods), which must fail the same way
//! twice.

/// One xorshift64 stream. A zero state stays zero: seed it with a non-zero
/// number (`seed | 1` where the seed may be 0).
#[derive(Clone, Debug)]
pub struct Xorshift64(pub u64);

impl Xorshift64 {
    /// The next state, which is also the output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 for `n` = 0), by remainder: a slight bias
    /// that reproducible test data does not mind.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `n` bytes, the low byte of one step each.
    pub fn bytes(&mut self, n: usize) -> alloc::vec::Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sequence() {
        // One step from 1, shift by shift.
        let a = 1u64 ^ (1 << 13);
        let b = a ^ (a >> 7);
        let mut x = Xorshift64(1);
        assert_eq!(x.next_u64(), b ^ (b << 17));
        assert_eq!(Xorshift64(0).next_u64(), 0);
    }

    #[test]
    fn below_stays_below() {
        let mut x = Xorshift64(0x5eed);
        assert!((0..1000).all(|_| x.below(7) < 7));
        assert_eq!(x.below(0), 0);
    }

    #[test]
    fn bytes_are_low_bytes_of_steps() {
        let mut a = Xorshift64(3);
        let mut b = a.clone();
        let want: Vec<u8> = (0..100).map(|_| b.next_u64() as u8).collect();
        assert_eq!(a.bytes(100), want);
    }
}
