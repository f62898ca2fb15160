"""Live sensors over Bluetooth LE (bleak): profiles, links, clock mapping, the live source.

One :class:`~companion.source.ble.profiles.base.Profile` per device family (one file each
in :mod:`companion.source.ble.profiles`); :class:`~companion.source.ble.source.BleSource`
connects the pinned sensors, keeps them connected and yields sample batches and link
events like any other :class:`~companion.source.base.Source`.
"""
