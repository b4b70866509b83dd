package mqtt

import "context"

// A fleet that forwards its gateways' readings to a broker the gateways
// do not publish to also republishes there, retained, what a consumer of
// the readings needs besides them: each gateway's state (for Home
// Assistant's availability and other fleets) and its restart
// announcement (so that a fleet further on tells a restart's gap from a
// loss). The latest message per topic is kept and published again at
// every connection.

// MirrorGatewayState sets the state ("online" or "offline") of another
// agent, a gateway whose readings this agent forwards, published retained
// on the gateway's status topic (kelvin/{agent}/status). It never blocks;
// safe for concurrent use.
func (c *Client) MirrorGatewayState(agent, state string) {
	c.mirrorRetained(agent, gatewayStatusTopic(agent), state)
}

// MirrorGatewayRestart sets the restart announcement of another agent (as
// it published it on kelvin/{agent}/restart, see AnnounceSkipped),
// published retained on that topic. It never blocks; safe for concurrent
// use.
func (c *Client) MirrorGatewayRestart(agent string, payload []byte) {
	c.mirrorRetained(agent, "kelvin/"+sanitise(agent)+"/restart", string(payload))
}

// mirrorRetained keeps payload as the retained message of topic, of
// agent, and has it published when it changed; this agent's own topics
// are never mirrored.
func (c *Client) mirrorRetained(agent, topic, payload string) {
	if agent == c.agentID || agent == "" {
		return
	}
	c.mirrorMu.Lock()
	old, ok := c.mirror[topic]
	changed := !ok || old != payload
	if changed {
		c.mirror[topic] = payload
		c.dirty[topic] = true
	}
	c.mirrorMu.Unlock()
	if changed {
		c.poke()
	}
}

// mirrorAll marks every mirrored message to be published again (after a
// connection).
func (c *Client) mirrorAll() {
	c.mirrorMu.Lock()
	for topic := range c.mirror {
		c.dirty[topic] = true
	}
	n := len(c.dirty)
	c.mirrorMu.Unlock()
	if n > 0 {
		c.poke()
	}
}

func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// mirrorLoop publishes the mirrored messages marked dirty while
// connected, until ctx is done. One that fails stays dirty for the next
// connection.
func (c *Client) mirrorLoop(ctx context.Context) {
	redo := func(topic string) {
		c.mirrorMu.Lock()
		c.dirty[topic] = true
		c.mirrorMu.Unlock()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		c.mirrorMu.Lock()
		todo := make(map[string]string, len(c.dirty))
		for topic := range c.dirty {
			todo[topic] = c.mirror[topic]
		}
		clear(c.dirty)
		c.mirrorMu.Unlock()
		for topic, payload := range todo {
			if ctx.Err() != nil || !c.pc.IsConnectionOpen() {
				redo(topic)
				continue
			}
			tok := c.pc.Publish(topic, 1, true, payload)
			if !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
				c.log.Debug("mqtt: mirroring a gateway's retained message failed", "topic", topic, "err", tok.Error())
				redo(topic)
			}
		}
	}
}
