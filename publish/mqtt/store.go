package mqtt

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// noStore is paho's message store for a clean session: it keeps nothing.
//
// paho puts every QoS 1 and 2 message it sends (and every one it receives)
// in its store until acknowledged, to send them again when it resumes a
// session, and reads the store only then: with CleanSession false. Client
// always connects with a clean session and resends on its own (Publish
// fails, and the caller sends the whole batch again on the next
// connection), so a store that keeps messages only costs, per message, a
// map entry, a lock and a log argument, and keeps acknowledged payloads
// alive until their PUBACK.
type noStore struct{}

var _ paho.Store = noStore{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
