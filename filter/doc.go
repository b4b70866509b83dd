// Package filter smooths a sensor's samples and judges their quality before
// they are buffered and published. The user writes, per sensor (and per
// quantity), a list of filters applied in order; the agent decodes it into
// Spec values and builds one Chain per sensor quantity with NewChain:
//
//	filters:
//	  - median: 3             # window of n samples (or a duration: median: 30s)
//	  - moving_average: 5     # simple moving average over n samples (or a duration)
//	  - ema: 0.3              # exponential moving average, alpha in (0,1]
//	  - clamp: [-55, 125]     # readings outside are faults, not data
//	  - offset: -0.4          # calibration: value + offset
//	  - calibrate_linear: [[0.0, 0.3], [100.0, 99.1]]   # two (raw, true) points
//	  - outlier: { window: 7, mads: 3 }   # Hampel identifier
//	  - max_rate: 2           # units per second vs the last accepted sample
//	  - delta: 0.1            # publish only on a change of at least 0.1...
//	  - heartbeat: 60s        # ...but at least every 60 s
//	  - round: 2              # decimal places
//
// A chain rejects a sample with one of three sentinel errors, matched with
// errors.Is: ErrDropped (outlier, max_rate: implausible, not published, not
// a fault), ErrUnchanged (delta: not published, not a fault) and
// ErrOutOfRange (clamp, or a NaN or infinite value: a sensor fault). Every
// filter before the rejecting one has already taken the sample into its
// state; the filters after it never see it.
//
// # Windows
//
// median, moving_average and outlier keep a sliding window: the last N
// samples, or the samples whose Time lies in (newest−Window, newest], so a
// 30s window fed every 10 s holds 3 samples. They emit a value for every
// sample, using the partial window while it fills. The median of an even
// count is the mean of the two middle values. The count form is a ring
// allocated once. The duration form holds at most MaxWindowSamples samples
// (it drops the oldest beyond that); when a sample is older than the newest
// one held (the clock stepped back) it empties the window and starts again.
// The moving average is summed afresh for every sample, so it does not drift.
// Means do not overflow: the moving average, ema and the median of an even
// count are finite whenever their inputs are, even near ±math.MaxFloat64.
//
// # Each filter
//
//   - median: the median of the window.
//   - moving_average: the mean of the window.
//   - ema: the first sample passes unchanged; then y = alpha·x + (1−alpha)·y_prev.
//   - clamp: a value outside [Min, Max] (bounds inclusive) is rejected with
//     ErrOutOfRange; it is not clamped to the bound, as it is a fault, not
//     data.
//   - offset: x + Offset.
//   - calibrate_linear: the line through the two (raw, true) points:
//     y = true1 + (x−raw1)·(true2−true1)/(raw2−raw1).
//   - outlier: the Hampel identifier. The window holds the last N samples
//     this filter received, the current one included, dropped or not, so a
//     genuine step is accepted after about half a window. With m the median
//     of the window, MAD the median of |xᵢ−m| and σ = 1.4826·MAD, the current
//     sample is dropped (ErrDropped) when |x−m| > MADs·σ. Until the window
//     holds 3 samples everything passes. When σ is 0 (at least half the
//     window is equal), a sample equal to m passes and any other is dropped.
//   - max_rate: the first sample passes; a later one is dropped (ErrDropped)
//     when |x−last|/(t−t_last) > Rate, with last and t_last the last accepted
//     sample (a dropped sample is never the reference). As the gap grows
//     while samples are dropped, a genuine step is eventually accepted. A
//     sample no later than the last accepted passes only with the same
//     value. And a change that lasts is accepted at once: after
//     ReanchorAfter (3) dropped samples in a row, each within Rate of the
//     one before, the last of them passes and becomes the reference, so a
//     wrong first sample, or one stamped in the future, cannot hold back
//     every later one. Noise that jumps back and forth never re-anchors.
//   - delta: the first sample passes; a later one passes only when
//     |x−last| ≥ Delta, with last the last sample it passed, else
//     ErrUnchanged. The comparison allows a relative tolerance of 1e-9 of the
//     values, so that 21.3 → 21.4 counts as a move of 0.1 in float64.
//   - heartbeat: NewChain gives its period to the nearest delta before it
//     (it is an error without one), which then also passes a sample when at
//     least Every has elapsed since the last sample it passed, or when the
//     clock stepped back before it. The heartbeat filter itself passes
//     everything. So "delta: 0.1, heartbeat: 60s" publishes on a change of
//     at least 0.1, and at least every 60 s while readings keep coming.
//   - round: Digits decimal places, half away from zero, applied to the
//     shortest decimal form of the value (what strconv.FormatFloat(x, 'g',
//     -1, 64) prints, the number the user sees) rather than to its binary
//     value: 21.435, 1.005 and 8.325, stored as 21.43499…, 1.00499… and
//     8.32499…, round to 21.44, 1.01 and 8.33, where math.Round(x*100)/100
//     gives 21.44 but 1 and 8.32. The result is the float64 nearest the
//     rounded decimal, never -0.
//
// Chain.Apply rejects a NaN or infinite input with ErrNotFinite (which
// matches ErrOutOfRange too), and so a filter's result that overflows. It does not allocate, except while a
// duration window grows to its working size.
//
// Chains and filters keep state and are not safe for concurrent use: each
// sensor quantity has its own chain, used by one goroutine.
package filter
