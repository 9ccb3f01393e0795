//! The address pool and its leases, persisted across restarts.
//!
//! Leases live in `<state_dir>/leases.toml`, rewritten (temp file + rename)
//! whenever a lease is granted, released or an address is found in use, so
//! a restarted relay gives each target the address it had.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NetError;

use crate::policy::tagging::{fmt_mac, parse_mac, Mac};

/// How long an offered address is held for the client that was offered it.
pub const OFFER_HOLD_SECS: u64 = 60;
/// How long an address found in use stays out of the pool.
pub const BAD_SECS: u64 = 600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub mac: String,
    pub ip: Ipv4Addr,
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default, rename = "lease")]
    leases: Vec<Lease>,
    /// Addresses some other host answered on, with when they may be retried.
    #[serde(default)]
    bad: BTreeMap<String, u64>,
}

pub struct Leases {
    path: Option<PathBuf>,
    first: u32,
    last: u32,
    /// Never handed out (the server's own address).
    reserved: Vec<Ipv4Addr>,
    statics: HashMap<Mac, Ipv4Addr>,
    bound: BTreeMap<Ipv4Addr, (Mac, u64)>,
    offered: BTreeMap<Ipv4Addr, (Mac, u64)>,
    bad: BTreeMap<Ipv4Addr, u64>,
}

impl Leases {
    /// Opens (or starts) the lease file under `state_dir`; `None` keeps
    /// leases in memory only.
    pub fn open(
        state_dir: Option<&Path>,
        range: (Ipv4Addr, Ipv4Addr),
        reserved: Vec<Ipv4Addr>,
        statics: HashMap<Mac, Ipv4Addr>,
    ) -> Result<Leases, NetError> {
        let path = match state_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| NetError::StateDir { dir: d.to_path_buf(), source })?;
                Some(d.join("leases.toml"))
            }
            None => None,
        };
        let mut l = Leases {
            path,
            first: range.0.into(),
            last: range.1.into(),
            reserved,
            statics,
            bound: BTreeMap::new(),
            offered: BTreeMap::new(),
            bad: BTreeMap::new(),
        };
        if l.first > l.last {
            return Err(NetError::RangeEmpty { first: range.0, last: range.1 });
        }
        if let Some(p) = &l.path {
            if p.exists() {
                let text =
                    std::fs::read_to_string(p).map_err(|source| NetError::ReadLeases { path: p.clone(), source })?;
                let f: File =
                    toml::from_str(&text).map_err(|source| NetError::LeaseFile { path: p.clone(), source })?;
                for lease in f.leases {
                    if let Ok(mac) = parse_mac(&lease.mac) {
                        l.bound.insert(lease.ip, (mac, lease.expires));
                    }
                }
                for (ip, until) in f.bad {
                    if let Ok(ip) = ip.parse() {
                        l.bad.insert(ip, until);
                    }
                }
            }
        }
        Ok(l)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip)) && !self.reserved.contains(&ip)
    }

    /// Whether `ip` may be bound to `mac` now: not another host's
    /// reservation or lease, not found in use. Another client's offer does
    /// not count: an offer is a proposal, and the REQUEST that comes first
    /// wins (as with dnsmasq, which keeps no state for offers).
    fn bindable_for(&self, ip: Ipv4Addr, mac: &Mac, now: u64) -> bool {
        if self.statics.iter().any(|(m, a)| *a == ip && m != mac) {
            return false;
        }
        if self.bad.get(&ip).is_some_and(|until| *until > now) {
            return false;
        }
        !self.bound.get(&ip).is_some_and(|(m, exp)| m != mac && *exp > now)
    }

    /// Whether `ip` may be offered to `mac` now: bindable, and not held for
    /// another client's pending offer.
    fn free_for(&self, ip: Ipv4Addr, mac: &Mac, now: u64) -> bool {
        self.bindable_for(ip, mac, now) && !self.offered.get(&ip).is_some_and(|(m, exp)| m != mac && *exp > now)
    }

    /// The address for `mac`: its reservation, its current lease, the
    /// address it asks for if free, the first free one, or else the oldest
    /// address held for another client's unanswered offer. The last rule
    /// is what keeps a flood of DISCOVERs from random MACs (each one holds
    /// an offer) from locking a real target out of the pool: offers are
    /// cheap to take back, leases are never taken.
    pub fn choose(&self, mac: &Mac, requested: Option<Ipv4Addr>, now: u64) -> Option<Ipv4Addr> {
        if let Some(ip) = self.statics.get(mac) {
            return Some(*ip);
        }
        let mine = |t: &BTreeMap<Ipv4Addr, (Mac, u64)>| {
            t.iter().find(|(ip, (m, _))| m == mac && self.in_pool(**ip)).map(|(ip, _)| *ip)
        };
        if let Some(ip) = mine(&self.bound).or_else(|| mine(&self.offered)) {
            if self.free_for(ip, mac, now) {
                return Some(ip);
            }
        }
        if let Some(ip) = requested.filter(|ip| self.in_pool(*ip) && self.free_for(*ip, mac, now)) {
            return Some(ip);
        }
        (self.first..=self.last)
            .map(Ipv4Addr::from)
            .find(|ip| self.in_pool(*ip) && self.free_for(*ip, mac, now))
            .or_else(|| {
                self.offered
                    .iter()
                    .filter(|(ip, _)| self.in_pool(**ip) && self.bindable_for(**ip, mac, now))
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(ip, _)| *ip)
            })
    }

    /// Holds `ip` for `mac` between OFFER and REQUEST.
    pub fn offer(&mut self, mac: &Mac, ip: Ipv4Addr, now: u64) {
        self.offered.insert(ip, (*mac, now + OFFER_HOLD_SECS));
    }

    /// Binds `ip` to `mac` if allowed (answer to a REQUEST); false means NAK.
    pub fn bind(&mut self, mac: &Mac, ip: Ipv4Addr, now: u64, secs: u32) -> Result<bool, NetError> {
        let ok = match self.statics.get(mac) {
            Some(s) => *s == ip,
            None => self.in_pool(ip) && self.bindable_for(ip, mac, now),
        };
        if ok {
            self.offered.remove(&ip);
            self.bound.retain(|a, (m, _)| m != mac || *a == ip);
            self.bound.insert(ip, (*mac, now + secs as u64));
            self.save()?;
        }
        Ok(ok)
    }

    pub fn release(&mut self, mac: &Mac, ip: Ipv4Addr) -> Result<(), NetError> {
        if self.bound.get(&ip).is_some_and(|(m, _)| m == mac) {
            self.bound.remove(&ip);
            self.save()?;
        }
        Ok(())
    }

    /// Takes `ip` out of the pool for a while: a client declined it or a
    /// probe found another host using it.
    pub fn mark_bad(&mut self, ip: Ipv4Addr, now: u64) -> Result<(), NetError> {
        self.bad.insert(ip, now + BAD_SECS);
        self.offered.remove(&ip);
        self.save()
    }

    /// The next `n` addresses a new client would be offered (free, not
    /// reserved, not found in use), for the background conflict probe.
    pub fn next_free(&self, n: usize, now: u64) -> Vec<Ipv4Addr> {
        // A MAC no client has: every lease and offer counts as taken.
        let nobody: Mac = [0xff; 6];
        (self.first..=self.last)
            .map(Ipv4Addr::from)
            .filter(|ip| self.in_pool(*ip) && self.free_for(*ip, &nobody, now))
            .take(n)
            .collect()
    }

    pub fn lease_of(&self, mac: &Mac) -> Option<Ipv4Addr> {
        self.bound.iter().find(|(_, (m, _))| m == mac).map(|(ip, _)| *ip)
    }

    fn save(&self) -> Result<(), NetError> {
        let Some(p) = &self.path else { return Ok(()) };
        let f = File {
            leases: self.bound.iter().map(|(ip, (m, e))| Lease { mac: fmt_mac(m), ip: *ip, expires: *e }).collect(),
            bad: self.bad.iter().map(|(ip, u)| (ip.to_string(), *u)).collect(),
        };
        let tmp = p.with_extension("toml.tmp");
        std::fs::write(&tmp, toml::to_string(&f)?)
            .map_err(|source| NetError::WriteLeases { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, p).map_err(|source| NetError::RenameLeases { path: p.clone(), source })?;
        Ok(())
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [2, 0, 0, 0, 0, 1];
    const B: Mac = [2, 0, 0, 0, 0, 2];
    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    fn pool(dir: Option<&Path>) -> Leases {
        Leases::open(dir, (ip(1), ip(3)), vec![ip(1)], [(B, ip(50))].into()).unwrap()
    }

    #[test]
    fn allocation() {
        let mut l = pool(None);
        assert_eq!(l.choose(&A, None, 0), Some(ip(2)));
        l.offer(&A, ip(2), 0);
        let c = [2, 0, 0, 0, 0, 3];
        assert_eq!(l.choose(&c, Some(ip(2)), 1), Some(ip(3)), "offered address is held");
        assert_eq!(l.choose(&c, None, 100), Some(ip(2)), "hold expires");
        assert_eq!(l.choose(&B, None, 0), Some(ip(50)), "static reservation");
        assert!(!l.bind(&B, ip(2), 0, 60).unwrap(), "static host gets only its address");
        assert!(l.bind(&A, ip(2), 0, 60).unwrap());
        assert!(!l.bind(&c, ip(2), 0, 60).unwrap(), "bound to someone else");
        assert!(!l.bind(&c, ip(9), 0, 60).unwrap(), "outside the pool");
        assert_eq!(l.next_free(4, 1), vec![ip(3)]);
        l.mark_bad(ip(3), 0).unwrap();
        assert_eq!(l.choose(&c, None, 1), None, "pool exhausted");
        assert!(l.next_free(4, 1).is_empty());
        l.release(&A, ip(2)).unwrap();
        assert_eq!(l.choose(&c, None, 1), Some(ip(2)));
    }

    #[test]
    fn a_flood_of_offers_never_locks_out_a_real_client() {
        // Pool 10.0.0.2-3 (ip(1) is the server's). Random MACs take both
        // addresses as pending offers; a target arriving later still gets
        // one (the oldest offer), and its REQUEST binds it. A bound lease
        // is never taken back.
        let mut l = pool(None);
        for (n, t) in [(0xa0u8, 0u64), (0xa1, 1), (0xa2, 2), (0xa3, 3)] {
            let flood = [6, 6, 6, 6, 6, n];
            let ip = l.choose(&flood, None, t).expect("the flood is offered something too");
            l.offer(&flood, ip, t);
        }
        let target = [2, 0, 0, 0, 0, 7];
        let got = l.choose(&target, None, 4).expect("a real target is never locked out by offers");
        l.offer(&target, got, 4);
        assert!(l.bind(&target, got, 5, 60).unwrap(), "an offer to another MAC does not block a REQUEST");
        for n in 0..8u8 {
            let flood = [6, 6, 6, 6, 7, n];
            if let Some(ip) = l.choose(&flood, None, 6) {
                assert_ne!(ip, got, "the target's lease was offered away");
                l.offer(&flood, ip, 6);
            }
        }
        assert_eq!(l.choose(&target, None, 7), Some(got), "the target keeps its lease");
        assert_eq!(l.choose(&B, None, 7), Some(ip(50)), "reservations are untouched");
    }

    #[test]
    fn leases_persist_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let now = unix_now();
        {
            let mut l = pool(Some(dir.path()));
            assert!(l.bind(&A, ip(3), now, 3600).unwrap());
            l.mark_bad(ip(2), now).unwrap();
        }
        let l = pool(Some(dir.path()));
        assert_eq!(l.lease_of(&A), Some(ip(3)));
        assert_eq!(l.choose(&A, None, now), Some(ip(3)));
        assert_eq!(l.choose(&[2, 0, 0, 0, 0, 9], None, now), None, "bad address stays out");
        let text = std::fs::read_to_string(dir.path().join("leases.toml")).unwrap();
        assert!(text.contains("02:00:00:00:00:01"), "{text}");
    }
}
