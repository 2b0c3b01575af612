import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as undici from 'undici';
import { Agent, connectorBuilder, headerNameToString, Pool } from '../../src/undici-parts.js';

describe('undici-parts', () => {
  it('are the classes and functions undici’s index exports, loaded without the index', () => {
    assert.equal(Pool, undici.Pool);
    assert.equal(Agent, undici.Agent);
    assert.equal(connectorBuilder, undici.buildConnector);
    assert.equal(headerNameToString, undici.util.headerNameToString);
  });
});
