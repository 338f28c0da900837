// What the Node.js rows of muxd's real-client matrix share (node_redis_check.cjs,
// ioredis_check.cjs): their command line, the payloads, ADD/SUM and their stand-in on a
// real Redis, the checks and the failure message. redis_py_check.py does the same in
// Python; tests/client_matrix runs them all.
'use strict';

const PIPELINE = 1000;
const PAYLOAD = Buffer.concat([
  Buffer.from('a\r\nb'),
  Buffer.from([...Array(256).keys()]),
  Buffer.from('\r\n*1\r\n$-1\r\n\0'),
]);
// SUM's stand-in on Redis: the running total, then reset to 0, as an integer reply.
const GET_AND_RESET =
  "local v = redis.call('GET', KEYS[1]) or 0 redis.call('DEL', KEYS[1]) return tonumber(v)";
const USAGE = `usage: ${process.argv[1]} --target tcp://HOST:PORT|unix:///PATH|tls://HOST:PORT [--cacert CA.pem] [--password PW] [--server muxd|redis]`;

/** A failed check: the row stops and the script exits 1 with this message. */
class Mismatch extends Error {}

let step = 'start';
let label = process.argv[1];

/** Names the check under way, for the message if the client throws. */
function setStep(name) {
  step = name;
}

function check(what, got, want) {
  const same = Buffer.isBuffer(want) ? Buffer.isBuffer(got) && got.equals(want) : got === want;
  if (!same) {
    throw new Mismatch(`${what}: expected ${show(want)}, got ${show(got)}`);
  }
}

function show(value) {
  return Buffer.isBuffer(value) ? `<${value.length} bytes ${value.toString('hex')}>` : JSON.stringify(value);
}

/** `--target`, `--password`, `--server` from the command line. */
function parseArgs() {
  const args = { server: 'muxd', password: undefined, target: undefined };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) fail(USAGE);
    if (flag === '--target') args.target = value;
    else if (flag === '--password') args.password = value;
    else if (flag === '--cacert') args.cacert = value;
    else if (flag === '--server' && ['muxd', 'redis'].includes(value)) args.server = value;
    else fail(USAGE);
  }
  if (!args.target) fail(USAGE);
  if (args.target.startsWith('unix://')) {
    args.path = args.target.slice('unix://'.length);
  } else {
    args.tls = args.target.startsWith('tls://');
    const hostPort = args.target.replace(/^(tcp|tls):\/\//, '');
    const colon = hostPort.lastIndexOf(':');
    args.host = hostPort.slice(0, colon);
    args.port = Number(hostPort.slice(colon + 1));
  }
  return args;
}

/** ADD/SUM as argument lists; on Redis, INCRBY and a script with the same integer replies. */
function adder(server) {
  const key = `matrix:adder:${process.pid}`;
  return {
    add: (...numbers) =>
      server === 'muxd'
        ? ['ADD', ...numbers.map(String)]
        : ['INCRBY', key, String(numbers.reduce((a, b) => a + b, 0))],
    sum: () => (server === 'muxd' ? ['SUM'] : ['EVAL', GET_AND_RESET, '1', key]),
  };
}

/**
 * Checks ADD/SUM (or their stand-ins) one by one through `send`, the client's generic
 * command call: ADD 1 2 3 → 6, ADD -10 → -4, SUM → -4, SUM → 0.
 */
async function checkAdder(adderFor, send) {
  for (const [command, want] of [
    [adderFor.add(1, 2, 3), 6],
    [adderFor.add(-10), -4],
    [adderFor.sum(), -4],
    [adderFor.sum(), 0],
  ]) {
    const what = command.slice(0, 2).join(' ');
    setStep(what);
    check(what, await send(command), want);
  }
}

/** The commands of the 1,000-long pipeline and the replies they must get, in order. */
function pipelineCommands(adderFor) {
  const commands = [];
  const replies = [];
  for (let i = 0; i < PIPELINE; i++) {
    if (i % 2) {
      commands.push(adderFor.add(1));
      replies.push((i + 1) / 2);
    } else {
      commands.push(['ECHO', `m${i}`]);
      replies.push(`m${i}`);
    }
  }
  return { commands, replies };
}

/** Parses `CLIENT LIST` text into one object per line. */
function parseClientList(text) {
  return String(text)
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => Object.fromEntries(line.trim().split(' ').map((kv) => kv.split(/=(.*)/s).slice(0, 2))));
}

/**
 * Collects the messages a subscriber's callbacks hand it, as [kind, channel, message]
 * (and the pattern for pmessage); `waitFor(n)` resolves once n have come, or fails the
 * step after 5 s.
 */
function messages() {
  const got = [];
  let wake = () => {};
  return {
    got,
    push(entry) {
      got.push(entry);
      wake();
    },
    waitFor(n) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Mismatch(`${got.length} of ${n} messages after 5 s: ${show(got)}`)), 5000);
        wake = () => {
          if (got.length >= n) {
            clearTimeout(timer);
            resolve(got.splice(0, n).sort());
          }
        };
        wake();
      });
    },
  };
}

/** Checks that two lists of [kind, channel, message...] are the same. */
function checkMessages(what, got, want) {
  check(what, JSON.stringify(got), JSON.stringify(want));
}

/** Fails the row at the step under way (for errors reported outside a promise). */
function failStep(message) {
  fail(`${step}: ${message}`);
}

function fail(message) {
  process.stderr.write(`FAIL ${label}: ${message}\n`);
  process.exit(1);
}

/**
 * Runs `row` with a watchdog, turning a mismatch or a client error into a FAIL line
 * naming the step; prints `ok LABEL` when it passes.
 */
function runRow(rowLabel, row) {
  label = rowLabel;
  console.log(label);
  const watchdog = setTimeout(() => fail(`${step}: no answer within 60 s`), 60_000);
  row().then(
    () => {
      clearTimeout(watchdog);
      console.log(`ok ${label}`);
      process.exit(0);
    },
    (e) => {
      const what = e instanceof Mismatch ? e.message : `${e && e.constructor && e.constructor.name}: ${e && e.message}`;
      fail(`${step}: ${what}`);
    },
  );
}

module.exports = {
  PAYLOAD,
  PIPELINE,
  Mismatch,
  adder,
  check,
  checkAdder,
  checkMessages,
  messages,
  fail,
  failStep,
  parseArgs,
  parseClientList,
  pipelineCommands,
  runRow,
  setStep,
};
