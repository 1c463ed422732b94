"""Rewards (PTS-2): a catalogue of products, gifts, services and partner vouchers that members
buy with points, in any store or channel; stock and per-member limits that racing tills cannot
overdraw; a redemption given back whole, points and stock, when it is cancelled."""
