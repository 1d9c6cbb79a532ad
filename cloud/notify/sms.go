package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SMS is the [Sender] of [ChannelSMS]: a generic HTTP SMS gateway that takes
//
//	POST <URL>  {"to": "<phone>", "text": "<message>"}   (Authorization: Bearer <Token>)
//	Idempotency-Key: <notification id>
//
// and answers 2xx when it accepted the message. The same notification always carries
// the same Idempotency-Key, retries included: a gateway that deduplicates by it (most
// do, under this or their own name; a shim can map it) texts the resident once. Most gateways (or a small shim in
// front of one) can take this shape. Phone numbers and message texts, which hold
// pickup codes, are never logged or put into errors.
type SMS struct {
	URL   string
	Token string
	// Location is the zone of notices that name none (queued before notices carried
	// their site's time_zone); nil: UTC. Every time in a text names its zone.
	Location *time.Location
	// Client (nil: a client with a 10 s timeout that follows no redirects).
	Client *http.Client
}

// Send implements [Sender].
func (s *SMS) Send(ctx context.Context, n Notification) error {
	text, err := Text(n, s.Location)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}{n.Target, text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: sms request: %v", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "larder-cloud")
	req.Header.Set(IdempotencyHeader, n.ID)
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	c := s.Client
	if c == nil {
		c = defaultClient
	}
	return postResult(c, req)
}

// Text renders the resident's message for n in Chinese, English or both (n.Lang "zh",
// "en" or anything else). Only "loaded" and "code_issued" carry the pickup code, followed
// by the resident page's link when the data has one (resident_url). Times are told in
// the site's zone (the data's time_zone; without one, or one this machine cannot load,
// loc; nil loc: UTC), named as [LocalTime] does.
func Text(n Notification, loc *time.Location) (string, error) {
	var d smsData
	if len(n.Data) > 0 {
		if err := json.Unmarshal(n.Data, &d); err != nil {
			return "", fmt.Errorf("%w: sms data: %v", ErrPermanent, err)
		}
	}
	if z, err := time.LoadLocation(d.TimeZone); d.TimeZone != "" && err == nil {
		loc = z
	}
	where := d.SiteName
	if where == "" {
		where = d.Site
	}
	doors := joinInts(d.Compartments, ", ")
	untilZh, untilEn := "", ""
	if !d.ExpiresAt.IsZero() {
		untilZh, untilEn = LocalTime(d.ExpiresAt, loc, "zh"), LocalTime(d.ExpiresAt, loc, "en")
	}
	var zh, en string
	switch n.Kind {
	case KindLoaded:
		if d.Code == "" {
			zh = fmt.Sprintf("【Larder】您的订单 %s 已放入%s的%s号柜门，请凭取件码于%s前取件。", d.Order, where, doors, untilZh)
			en = fmt.Sprintf("[Larder] Your order %s is in door %s at %s. Please collect it with your pickup code by %s.", d.Order, doors, where, untilEn)
			break
		}
		zh = fmt.Sprintf("【Larder】您的订单 %s 已放入%s的%s号柜门，取件码 %s，请于%s前取件。", d.Order, where, doors, d.Code, untilZh)
		en = fmt.Sprintf("[Larder] Your order %s is in door %s at %s. Pickup code %s. Please collect by %s.", d.Order, doors, where, d.Code, untilEn)
		zh, en = withLink(zh, en, d.ResidentURL)
	case KindCodeIssued:
		if d.Code == "" {
			return "", fmt.Errorf("%w: code notice without a code", ErrPermanent)
		}
		zh = fmt.Sprintf("【Larder】您的订单 %s 的新取件码为 %s，旧取件码已失效。", d.Order, d.Code)
		en = fmt.Sprintf("[Larder] New pickup code for your order %s: %s. The old code no longer works.", d.Order, d.Code)
		zh, en = withLink(zh, en, d.ResidentURL)
	case KindReassigned:
		zh = fmt.Sprintf("【Larder】您的订单 %s 已改放入%s的%s号柜门，取件码不变。", d.Order, where, doors)
		en = fmt.Sprintf("[Larder] Your order %s has moved to door %s at %s. Your pickup code stays the same.", d.Order, doors, where)
	case KindExtended:
		zh = fmt.Sprintf("【Larder】您的订单 %s 取件时间已延长至%s。", d.Order, untilZh)
		en = fmt.Sprintf("[Larder] You now have until %s to collect your order %s.", untilEn, d.Order)
	case KindCodeInvalidated:
		zh = fmt.Sprintf("【Larder】为保障安全，您的订单 %s 的取件码已停用，请联系商家获取新取件码。", d.Order)
		en = fmt.Sprintf("[Larder] For your security the pickup code of your order %s was disabled. Please contact the shop for a new one.", d.Order)
	case KindCancelled:
		zh = fmt.Sprintf("【Larder】您的订单 %s 的柜门预约已取消，请联系商家。", d.Order)
		en = fmt.Sprintf("[Larder] The locker booking for your order %s was cancelled. Please contact the shop.", d.Order)
	case KindReminder:
		zh = fmt.Sprintf("【Larder】提醒：您的订单 %s 仍在%s的%s号柜门，请于%s前取件。", d.Order, where, doors, untilZh)
		en = fmt.Sprintf("[Larder] Reminder: your order %s is waiting in door %s at %s. Please collect by %s.", d.Order, doors, where, untilEn)
	case KindExpired:
		zh = fmt.Sprintf("【Larder】您的订单 %s 已超过取件时间，将由配送员取回，请联系商家安排退款或重新配送。", d.Order)
		en = fmt.Sprintf("[Larder] Your order %s was not collected in time and will be returned. Please contact the shop for a refund or redelivery.", d.Order)
	case KindCompromised:
		zh = fmt.Sprintf("【Larder】您的订单 %s 储存温度异常，为保障食品安全请勿取用，商家将为您退款或重新配送。", d.Order)
		en = fmt.Sprintf("[Larder] Your order %s was not kept at a safe temperature. For your safety please do not collect it; the shop will refund or redeliver.", d.Order)
	default:
		return "", fmt.Errorf("%w: no SMS text for %s", ErrPermanent, n.Kind)
	}
	switch n.Lang {
	case "zh":
		return zh, nil
	case "en":
		return en, nil
	}
	return zh + "\n" + en, nil
}

// LocalTime tells t in loc the way residents read a deadline, naming the zone so that
// nobody takes it for their phone's: "12月4日 18:30（北京时间）" and "4 Dec 18:30
// (Beijing time)" for China's zone (Asia/Shanghai and its aliases), otherwise the UTC
// offset at t: "12月4日 18:30（UTC+9）", "4 Dec 18:30 (UTC+9)". lang is "zh" or
// anything else (English); nil loc is UTC.
func LocalTime(t time.Time, loc *time.Location, lang string) string {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	zone := utcOffset(t)
	if beijing[loc.String()] {
		zone = "Beijing time"
		if lang == "zh" {
			zone = "北京时间"
		}
	}
	if lang == "zh" {
		return fmt.Sprintf("%d月%d日 %s（%s）", t.Month(), t.Day(), t.Format("15:04"), zone)
	}
	return t.Format("2 Jan 15:04") + " (" + zone + ")"
}

// beijing are the IANA names of China Standard Time, which people there call 北京时间.
var beijing = map[string]bool{"Asia/Shanghai": true, "Asia/Chongqing": true, "Asia/Chungking": true,
	"Asia/Harbin": true, "PRC": true}

// utcOffset names t's offset: "UTC", "UTC+8", "UTC-3:30".
func utcOffset(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "UTC"
	}
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	s := "UTC" + sign + strconv.Itoa(off/3600)
	if m := off % 3600 / 60; m != 0 {
		s += fmt.Sprintf(":%02d", m)
	}
	return s
}

// withLink appends the resident page's link (which carries the code) to both texts.
func withLink(zh, en, link string) (string, string) {
	if link == "" {
		return zh, en
	}
	return zh + "取件页面：" + link, en + " Pickup page: " + link
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
