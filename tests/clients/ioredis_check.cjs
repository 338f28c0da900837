#!/usr/bin/env node
// One row of muxd's real-client matrix for ioredis, run by tests/client_matrix with
// NODE_PATH pointing at an npm install.
//
// Connects with ioredis's defaults (ioredis 6 asks for RESP3 with HELLO 3 and falls back
// to RESP2 when the server has no HELLO), then checks PING, ECHO of a binary payload,
// ADD/SUM through call(), CLIENT SETNAME then CLIENT LIST (name, and resp= equal to the
// protocol ioredis asked for), a pipeline and a transaction (multi) of 1,000 commands with
// every reply checked, and pub/sub: subscribe and psubscribe with their counts, the
// message and pmessage events, PING while subscribed, unsubscribing. With --password the server requires it: the row connects with the
// `password` option, and a wrong one must surface as a ReplyError saying WRONGPASS.
// --server redis swaps ADD/SUM for stand-ins a real redis-server has (see common.cjs).
'use strict';

const Redis = require('ioredis');
const { ReplyError } = Redis;
const version = require('ioredis/package.json').version;
const c = require('./common.cjs');

const args = c.parseArgs();

function options(password) {
  const target = args.path ? { path: args.path } : { host: args.host, port: args.port };
  return password === undefined ? target : { ...target, password };
}

async function row() {
  c.setStep('connect');
  const client = new Redis(options(args.password));
  // ioredis reconnects on its own after a failed handshake, reporting it here.
  client.on('error', (e) => c.failStep(`error event ${e.constructor.name}: ${e.message}`));
  c.setStep('PING');
  c.check('PING', await client.ping(), 'PONG');

  c.setStep('ECHO');
  c.check('ECHO binary payload', await client.callBuffer('ECHO', c.PAYLOAD), c.PAYLOAD);

  const adder = c.adder(args.server);
  await c.checkAdder(adder, (command) => client.call(...command));

  const name = `matrix-ioredis-${process.pid}`;
  c.setStep('CLIENT SETNAME');
  c.check('CLIENT SETNAME', await client.client('SETNAME', name), 'OK');
  c.setStep('CLIENT LIST');
  const rows = c.parseClientList(await client.client('LIST')).filter((r) => r.name === name);
  c.check(`CLIENT LIST rows named ${name}`, rows.length, 1);
  c.check('CLIENT LIST resp=', rows[0].resp, String(client.options.protocol));

  const { commands, replies } = c.pipelineCommands(adder);
  for (const what of ['pipeline', 'transaction']) {
    c.setStep(`${what} of ${c.PIPELINE}`);
    const batch = what === 'pipeline' ? client.pipeline() : client.multi();
    for (const command of commands) batch.call(...command);
    const got = await batch.exec();
    c.check(`${what} reply count`, got.length, c.PIPELINE);
    got.forEach(([error, reply], i) => {
      c.check(`${what} reply ${i} error`, error, null);
      c.check(`${what} reply ${i}`, reply, replies[i]);
    });
    c.check(`SUM after the ${what}`, await client.call(...adder.sum()), c.PIPELINE / 2);
  }
  client.disconnect();
}

async function pubsub() {
  c.setStep('pub/sub: connect');
  const sub = new Redis(options(args.password));
  sub.on('error', (e) => c.failStep(`error event ${e.constructor.name}: ${e.message}`));
  const publisher = new Redis(options(args.password));
  publisher.on('error', (e) => c.failStep(`error event ${e.constructor.name}: ${e.message}`));
  const channel = `matrix:${process.pid}:news`;
  const pattern = `matrix:${process.pid}:n*`;
  const inbox = c.messages();
  sub.on('message', (ch, message) => inbox.push(['message', ch, message]));
  sub.on('pmessage', (pat, ch, message) => inbox.push(['pmessage', pat, ch, message]));
  c.setStep('SUBSCRIBE, PSUBSCRIBE');
  c.check('SUBSCRIBE count', await sub.subscribe(channel), 1);
  c.check('PSUBSCRIBE count', await sub.psubscribe(pattern), 2);
  c.setStep('PUBLISH');
  c.check('PUBLISH receivers', await publisher.publish(channel, 'hello'), 2);
  c.checkMessages('messages', await inbox.waitFor(2), [['message', channel, 'hello'], ['pmessage', pattern, channel, 'hello']]);
  c.setStep('PING while subscribed');
  await sub.ping();
  c.setStep('UNSUBSCRIBE, PUNSUBSCRIBE');
  c.check('UNSUBSCRIBE count', await sub.unsubscribe(channel), 1);
  c.check('PUNSUBSCRIBE count', await sub.punsubscribe(pattern), 0);
  c.check('PUBLISH after unsubscribing', await publisher.publish(channel, 'nobody'), 0);
  sub.disconnect();
  publisher.disconnect();
}

async function wrongPassword() {
  c.setStep('wrong password');
  const client = new Redis(options(`${args.password}-wrong`));
  // Reported as an error event too, then ioredis retries: stop it after the first.
  client.on('error', () => client.disconnect());
  try {
    await client.ping();
  } catch (error) {
    if (!(error instanceof ReplyError) || !error.message.startsWith('WRONGPASS')) {
      throw new c.Mismatch(`wrong password: expected a ReplyError WRONGPASS, got ${error.constructor.name}: ${error.message}`);
    }
    return;
  } finally {
    client.disconnect();
  }
  throw new c.Mismatch('wrong password: PING succeeded');
}

c.runRow(`ioredis ${version} ${args.target}${args.password === undefined ? '' : ' with password'}`, async () => {
  await row();
  await pubsub();
  if (args.password !== undefined) await wrongPassword();
});
