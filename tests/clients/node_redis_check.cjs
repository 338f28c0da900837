#!/usr/bin/env node
// One row of muxd's real-client matrix for node-redis (npm `redis`), run by
// tests/client_matrix with NODE_PATH pointing at an npm install.
//
// Connects with node-redis's defaults (RESP3: it sends HELLO 3), then checks PING, ECHO of
// a binary payload, ADD/SUM through sendCommand, CLIENT SETNAME then CLIENT LIST (name and
// resp= shown), a pipeline (execAsPipeline) and a transaction (exec) of 1,000 commands
// with every reply checked, and pub/sub in its default RESP3: subscribe and pSubscribe,
// the messages, PING on the subscribed connection (RESP3 has no subscribed mode),
// unsubscribing. With --password the server requires it: the row connects with
// the `password` option, and a wrong one must surface as an ErrorReply saying WRONGPASS.
// --server redis swaps ADD/SUM for stand-ins a real redis-server has (see common.cjs).
'use strict';

const { createClient, ErrorReply, RESP_TYPES } = require('redis');
const version = require('redis/package.json').version;
const c = require('./common.cjs');

// node-redis 5 and 6 speak RESP3 unless told otherwise (`RESP: 2`).
const DEFAULT_RESP = 3;

const args = c.parseArgs();

function options(password) {
  const socket = args.path ? { path: args.path } : { host: args.host, port: args.port };
  if (args.tls) {
    socket.tls = true;
    socket.ca = [require('fs').readFileSync(args.cacert)];
  }
  return password === undefined ? { socket } : { socket, password };
}

async function row() {
  const client = createClient(options(args.password));
  // By default node-redis reconnects forever on a failed handshake, reporting each try
  // here: the first report fails the row.
  client.on('error', (e) => c.failStep(`error event ${e.constructor.name}: ${e.message}`));
  c.setStep('connect');
  await client.connect();
  c.setStep('PING');
  c.check('PING', await client.ping(), 'PONG');

  c.setStep('ECHO');
  const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  c.check('ECHO binary payload', await binary.echo(c.PAYLOAD), c.PAYLOAD);

  const adder = c.adder(args.server);
  await c.checkAdder(adder, (command) => client.sendCommand(command));

  const name = `matrix-node-redis-${process.pid}`;
  c.setStep('CLIENT SETNAME');
  c.check('CLIENT SETNAME', await client.clientSetName(name), 'OK');
  c.setStep('CLIENT LIST');
  const rows = (await client.clientList()).filter((r) => r.name === name);
  c.check(`CLIENT LIST rows named ${name}`, rows.length, 1);
  c.check('CLIENT LIST resp=', rows[0].resp, DEFAULT_RESP);

  const { commands, replies } = c.pipelineCommands(adder);
  for (const what of ['pipeline', 'transaction']) {
    c.setStep(`${what} of ${c.PIPELINE}`);
    const multi = client.multi();
    for (const command of commands) multi.addCommand(command);
    const got = what === 'pipeline' ? await multi.execAsPipeline() : await multi.exec();
    c.check(`${what} reply count`, got.length, c.PIPELINE);
    got.forEach((reply, i) => c.check(`${what} reply ${i}`, reply, replies[i]));
    c.check(`SUM after the ${what}`, await client.sendCommand(adder.sum()), c.PIPELINE / 2);
  }
  client.destroy();
}

async function pubsub() {
  c.setStep('pub/sub: connect');
  const client = createClient(options(args.password));
  client.on('error', (e) => c.failStep(`error event ${e.constructor.name}: ${e.message}`));
  await client.connect();
  const publisher = client.duplicate();
  publisher.on('error', (e) => c.failStep(`error event ${e.constructor.name}: ${e.message}`));
  await publisher.connect();
  const channel = `matrix:${process.pid}:news`;
  const pattern = `matrix:${process.pid}:n*`;
  const inbox = c.messages();
  c.setStep('SUBSCRIBE, PSUBSCRIBE');
  await client.subscribe(channel, (message, ch) => inbox.push(['message', ch, message]));
  await client.pSubscribe(pattern, (message, ch) => inbox.push(['pmessage', ch, message]));
  c.setStep('PUBLISH');
  c.check('PUBLISH receivers', await publisher.publish(channel, 'hello'), 2);
  c.checkMessages('messages', await inbox.waitFor(2), [['message', channel, 'hello'], ['pmessage', channel, 'hello']]);
  c.setStep('PING on the subscribed connection');
  c.check('PING', await client.ping(), 'PONG');
  c.setStep('UNSUBSCRIBE, PUNSUBSCRIBE');
  await client.unsubscribe(channel);
  c.check('PUBLISH receivers', await publisher.publish(channel, 'pattern only'), 1);
  c.checkMessages('messages', await inbox.waitFor(1), [['pmessage', channel, 'pattern only']]);
  await client.pUnsubscribe(pattern);
  c.check('PUBLISH after unsubscribing', await publisher.publish(channel, 'nobody'), 0);
  client.destroy();
  publisher.destroy();
}

async function wrongPassword() {
  c.setStep('wrong password');
  const client = createClient(options(`${args.password}-wrong`));
  // node-redis retries a refused handshake forever, reporting each try as an error
  // event; stop it at the first, which then rejects connect() with that error.
  let reported;
  client.on('error', (e) => {
    reported ??= e;
    client.destroy();
  });
  try {
    await client.connect();
  } catch (e) {
    const error = reported ?? e;
    if (!(error instanceof ErrorReply) || !error.message.startsWith('WRONGPASS')) {
      throw new c.Mismatch(`wrong password: expected an ErrorReply WRONGPASS, got ${error.constructor.name}: ${error.message}`);
    }
    return;
  }
  throw new c.Mismatch('wrong password: connect succeeded');
}

c.runRow(`node-redis ${version} ${args.target}${args.password === undefined ? '' : ' with password'}`, async () => {
  await row();
  await pubsub();
  if (args.password !== undefined) await wrongPassword();
});
