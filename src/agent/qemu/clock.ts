/**
 * `domain.clock`: the RTC base (UTC, UTC plus an offset, or a time zone)
 * and the timer hints QEMU has equivalents for.
 */
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { invalidDomain } from './errors.js';
import { options } from './keyval.js';
import type { OptionValue } from './keyval.js';

const timezonePattern = /^[A-Za-z0-9_+\-/]+$/;
// 100 years either way is far beyond any clock a guest can mean.
const maxOffsetSeconds = 100 * 365 * 24 * 3600;

/** QEMU's `-rtc base=` takes an absolute time, so an offset is applied to the start time. */
function offsetBase(now: Date, offsetSeconds: number): string {
  return new Date(now.getTime() + offsetSeconds * 1000).toISOString().slice(0, 19);
}

function rtcBase(ctx: BuildContext): string {
  const clock = ctx.domain.get('clock');
  const utc = clock.get('utc');
  const timezone = clock.get('timezone');
  if (utc.present && timezone.present) throw invalidDomain(clock.path, 'set either utc or timezone, not both');
  if (timezone.present) {
    const zone = timezone.string() ?? '';
    if (!timezonePattern.test(zone)) throw invalidDomain(timezone.path, `"${zone}" is not a time zone name such as "America/New_York"`);
    // QEMU's `localtime` is the zone of its own process.
    ctx.env.TZ = zone;
    return 'localtime';
  }
  const offset = utc.get('offsetSeconds').integer(-maxOffsetSeconds, maxOffsetSeconds);
  if (offset === undefined || offset === 0) return 'utc';
  if (ctx.facts.now === undefined) {
    warn(ctx, utc.get('offsetSeconds'), 'no start time was given (NodeFacts.now); the guest clock starts at UTC');
    return 'utc';
  }
  return offsetBase(ctx.facts.now, offset);
}

/** `-rtc`, plus timer settings on `-machine` and `-global`. */
export function clockArgs(ctx: BuildContext): string[] {
  const timer = ctx.domain.get('clock').get('timer');
  const rtc: Record<string, OptionValue> = { base: rtcBase(ctx) };
  const args: string[] = [];

  const rtcTimer = timer.get('rtc');
  const rtcTick = rtcTimer.get('tickPolicy').oneOf(['delay', 'catchup']);
  if (rtcTick === 'catchup') rtc.driftfix = 'slew';
  const track = rtcTimer.get('track').oneOf(['guest', 'wall']);
  if (track !== undefined) rtc.clock = track === 'guest' ? 'vm' : 'host';
  if (!rtcTimer.enabled(true, 'present')) warn(ctx, rtcTimer.get('present'), 'a q35 machine always has an RTC; it stays');

  const pit = timer.get('pit');
  if (pit.present && !pit.enabled(true, 'present')) ctx.machine.pit = false;
  const pitTick = pit.get('tickPolicy').oneOf(['delay', 'catchup', 'discard']);
  if (pitTick !== undefined) {
    if (ctx.facts.accel === 'kvm' && pitTick !== 'catchup') args.push('-global', `kvm-pit.lost_tick_policy=${pitTick}`);
    else warn(ctx, pit.get('tickPolicy'), ctx.facts.accel === 'kvm' ? 'QEMU\'s PIT has no catch-up policy' : 'the emulated PIT has no tick policy');
  }

  const hpet = timer.get('hpet');
  if (hpet.present && !hpet.enabled(true, 'present')) ctx.machine.hpet = false;
  if (hpet.get('tickPolicy').present) warn(ctx, hpet.get('tickPolicy'), 'QEMU\'s HPET has no tick policy');

  return ['-rtc', options(undefined, rtc), ...args];
}
