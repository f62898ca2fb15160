"""A physically honest simulator of a running IMU on the foot and/or the shank.

What it models
--------------
A sagittal kinematic chain per leg (shank angle, ankle angle, foot angle =
shank + ankle, conventions of :mod:`companion.types`), a small frontal-plane
rotation (inversion/eversion) and a constant toe-out, plus the foot's path over
the ground: in stance the foot pivots on its heel (toes up), lies flat, then
pivots on its forefoot (heel up); in swing it travels forward and up to the next
contact. The accelerometer is the **specific force** at the sensor's location
(acceleration minus gravity, numerically differentiated on a fine time grid, so
tangential and centripetal terms of the lever arm are in it), the gyroscope the
body angular rate; both are rotated into the segment frame and then into the
sensor's axes by the mounting rotation. An impact transient (a zero-net-impulse
damped oscillation) follows each initial contact; a sensor anti-alias average,
16-bit quantisation, saturation at the ranges, white noise, a constant bias,
timestamp jitter and whole-packet loss complete the chain.

Where the figures come from
---------------------------
* Cadence 150-190 steps/min, contact 0.20-0.30 s at easy to moderate pace and
  shorter when faster: Novacheck (1998), "The biomechanics of running", Gait &
  Posture 7:77-95; Heiderscheit et al. (2011), Med Sci Sports Exerc 43:296-302.
* Ankle sagittal curve: slightly dorsiflexed (rearfoot) or plantarflexed
  (forefoot) at contact, peak dorsiflexion of about 20 deg near mid-stance,
  plantarflexion of about 15-25 deg at toe-off, return in swing; sagittal range
  of motion about 30-50 deg (Novacheck 1998, Fig. 7; Dugan & Bhat 2005, Phys Med
  Rehabil Clin N Am 16:603-621).
* Foot strike angle: rearfoot clearly positive (about +10..+25 deg), midfoot
  near 0, forefoot negative, with the classification cut-offs near +8 and -1.6
  deg of Altman & Davis (2012), "A kinematic method for footstrike pattern
  detection in barefoot and shod runners", Gait & Posture 35:298-300.
* Shank (tibia) inclination about +5..+12 deg at contact, rotating forward
  through stance; knee flexion in swing of about 90-110 deg puts the shank near
  horizontal at its most flexed (Novacheck 1998).
* Eversion after contact 5-15 deg (Dugan & Bhat 2005).
* Impacts: foot-mounted sensors see tens of g at a heel strike and swing
  angular rates past 1000 deg/s at speed; peak tibial acceleration is typically
  several g (Milner et al. 2006, Med Sci Sports Exerc 38:323-328; Mercer et al.
  2003 for the frequency content of 10-20 Hz active and higher passive peaks).

The ankle faults follow the technique's definitions (``/shared`` reference):
``rigid`` shrinks the ankle's motion around a held angle, ``forced_dorsiflexion``
holds the toes up into landing (higher strike angle, longer braking contact),
``forced_plantarflexion`` points the toes and keeps the heel off the ground
through stance. Severity varies by runner and by stride.

Two worlds (:data:`WORLDS`): ``classic`` is the first, narrow one (the default of
everything, and of :meth:`RunnerParams.random`, seed for seed as it always was);
``wide`` (``RunnerParams.random(rng, "wide")``, :meth:`RunConditions.random`,
:func:`draw_world`) varies fault sizes from just over the estimator's thresholds to
large, every strike style, easy to fast running, late-swing braking, sensor ranges
that clip, 50-406 Hz, BLE packets of 10-200 ms with loss and dropouts, clock drift,
host-side timestamps, starts without standing, and turns (docs/simulator.md).

The code lives in :mod:`companion.source.sim`: ``params`` (runner, conditions,
faults, the worlds' draws), ``kinematics`` (the leg), ``sensor`` (the IMU and its
link), ``truth`` (events, angles, the files beside a recording), ``run``
(``simulate``). Everything is vectorised with numpy; 4 minutes at 200 Hz with two
sensors takes well under a second. A given seed always gives the same run.
"""

from companion.source.sim import *  # noqa: F403
from companion.source.sim import __all__  # noqa: F401
